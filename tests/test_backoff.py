"""One backoff for every retry, and the Retry-After header."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from novita_manager.backoff import backoff_delay, parse_retry_after


def test_backoff_doubles_from_base_up_to_the_cap() -> None:
    assert [backoff_delay(n, 1, 60, jitter=0) for n in range(1, 9)] == [1, 2, 4, 8, 16, 32, 60, 60]
    assert backoff_delay(0, 1, 60, jitter=0) == 1
    assert backoff_delay(3, 0.01, rand=lambda: 0.5) == pytest.approx(0.04)


@given(st.integers(0, 10_000), st.floats(0, 100), st.floats(0, 1000), st.floats(0, 0.9))
def test_backoff_stays_within_jitter_and_cap(
    failures: int, base: float, cap: float, jitter: float
) -> None:
    plain = min(cap, base * 2.0 ** min(max(failures - 1, 0), 62))
    delay = backoff_delay(failures, base, cap, jitter=jitter)
    assert 0 <= delay <= cap
    assert plain * (1 - jitter) - 1e-9 <= delay <= plain * (1 + jitter) + 1e-9


def test_backoff_jitter_spreads_delays() -> None:
    assert backoff_delay(2, 1.0, rand=lambda: 0.0) == pytest.approx(1.6)
    assert backoff_delay(2, 1.0, rand=lambda: 1.0) == pytest.approx(2.4)
    delays = {backoff_delay(1, 1.0) for _ in range(50)}
    assert all(0.8 <= delay <= 1.2 for delay in delays)
    assert len(delays) > 1
    assert backoff_delay(4, 0.0) == 0.0


def test_retry_after_seconds_and_dates() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert parse_retry_after("2") == 2.0
    assert parse_retry_after(" 0.5 ") == 0.5
    assert parse_retry_after("-3") == 0.0
    assert parse_retry_after(format_datetime(now + timedelta(seconds=7), usegmt=True), now=now) == (
        pytest.approx(7.0)
    )
    assert parse_retry_after(format_datetime(now - timedelta(seconds=7), usegmt=True), now=now) == 0
    for bad in (None, "", "soon", "nan"):
        assert parse_retry_after(bad) is None
