"""Circuit breaker transitions, driven by a fake clock."""

from __future__ import annotations

import pytest

from novita_manager.novita.circuit import CircuitBreaker, CircuitState
from novita_manager.novita.errors import NovitaUnavailable


def state_of(breaker: CircuitBreaker) -> str:
    """Read the state afresh (mypy would otherwise narrow the property across calls)."""
    return breaker.state


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def changes() -> list[CircuitState]:
    return []


@pytest.fixture
def breaker(clock: FakeClock, changes: list[CircuitState]) -> CircuitBreaker:
    return CircuitBreaker(3, 10.0, clock=clock, on_change=changes.append)


def test_opens_after_threshold_consecutive_failures(breaker: CircuitBreaker) -> None:
    breaker.record_failure()
    breaker.record_failure()
    breaker.record_success()  # resets the streak
    breaker.record_failure()
    breaker.record_failure()
    assert state_of(breaker) == "closed"
    breaker.before_call()
    breaker.record_failure()
    assert state_of(breaker) == "open"


def test_open_fails_fast_then_half_open_admits_one_probe(
    breaker: CircuitBreaker, clock: FakeClock, changes: list[CircuitState]
) -> None:
    for _ in range(3):
        breaker.record_failure()
    with pytest.raises(NovitaUnavailable) as caught:
        breaker.before_call()
    assert caught.value.retry_after == pytest.approx(10.0)
    clock.now += 10.0
    assert state_of(breaker) == "half_open"
    breaker.before_call()  # the probe
    with pytest.raises(NovitaUnavailable):
        breaker.before_call()  # a second caller while the probe is in flight
    breaker.record_success()
    assert state_of(breaker) == "closed"
    breaker.before_call()
    assert changes == ["open", "half_open", "closed"]


def test_failed_probe_reopens(breaker: CircuitBreaker, clock: FakeClock) -> None:
    for _ in range(3):
        breaker.record_failure()
    clock.now += 10.0
    breaker.before_call()
    breaker.record_failure()
    assert state_of(breaker) == "open"
    clock.now += 9.9
    with pytest.raises(NovitaUnavailable):
        breaker.before_call()
    clock.now += 0.1
    breaker.before_call()
    assert state_of(breaker) == "half_open"


def test_released_or_stuck_probe_does_not_block_forever(
    breaker: CircuitBreaker, clock: FakeClock
) -> None:
    for _ in range(3):
        breaker.record_failure()
    clock.now += 10.0
    breaker.before_call()
    breaker.release()  # e.g. the probe was cancelled
    breaker.before_call()  # another probe may go
    clock.now += 10.0  # that one never reported back
    breaker.before_call()
    assert state_of(breaker) == "half_open"


def test_threshold_must_be_positive() -> None:
    with pytest.raises(ValueError, match="failure_threshold"):
        CircuitBreaker(0, 1.0)
