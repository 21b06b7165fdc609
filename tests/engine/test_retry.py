"""Retry bookkeeping: exponential backoff with bounded jitter, truncated errors."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given
from hypothesis import strategies as st

from novita_manager.engine.retry import MAX_ERROR_LENGTH, backoff_delay, retry_values
from novita_manager.store.types import utcnow


def test_backoff_doubles_from_base_up_to_the_cap() -> None:
    assert [backoff_delay(n, 1, 60, jitter=0) for n in range(1, 9)] == [1, 2, 4, 8, 16, 32, 60, 60]
    assert backoff_delay(0, 1, 60, jitter=0) == 1


@given(st.integers(0, 10_000), st.floats(0, 100), st.floats(0, 1000), st.floats(0, 0.9))
def test_backoff_stays_within_jitter_and_cap(
    attempts: int, base: float, cap: float, jitter: float
) -> None:
    plain = min(cap, base * 2.0 ** min(max(attempts - 1, 0), 62))
    delay = backoff_delay(attempts, base, cap, jitter)
    assert 0 <= delay <= cap
    assert plain * (1 - jitter) - 1e-9 <= delay <= plain * (1 + jitter) + 1e-9


def test_retry_values_count_schedule_and_truncate() -> None:
    now = utcnow()
    values = retry_values(2, "x" * 10_000, base=1, cap=100, now=now)
    assert values["attempts"] == 3
    assert (
        now + timedelta(seconds=3.19) <= values["next_attempt_at"] <= now + timedelta(seconds=4.81)
    )
    assert len(values["last_error"]) == MAX_ERROR_LENGTH
