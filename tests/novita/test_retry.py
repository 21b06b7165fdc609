"""Backoff timing, Retry-After parsing and the token bucket."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from novita_manager.novita.ratelimit import TokenBucket
from novita_manager.novita.retry import backoff_delay, parse_retry_after


def test_backoff_doubles_from_base() -> None:
    middle = [backoff_delay(n, 1.0, rand=lambda: 0.5) for n in range(3)]
    assert middle == [1.0, 2.0, 4.0]
    assert backoff_delay(2, 0.01, rand=lambda: 0.5) == pytest.approx(0.04)


def test_backoff_jitter_stays_within_a_quarter() -> None:
    assert backoff_delay(1, 1.0, rand=lambda: 0.0) == pytest.approx(1.5)
    assert backoff_delay(1, 1.0, rand=lambda: 1.0) == pytest.approx(2.5)
    delays = {backoff_delay(0, 1.0) for _ in range(50)}
    assert all(0.75 <= delay <= 1.25 for delay in delays)
    assert len(delays) > 1
    assert backoff_delay(3, 0.0) == 0.0


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


async def test_token_bucket_limits_rate() -> None:
    bucket = TokenBucket(rate=20.0, burst=1)
    started = time.perf_counter()
    await asyncio.gather(*(bucket.acquire() for _ in range(5)))
    elapsed = time.perf_counter() - started
    assert 0.15 <= elapsed < 1.0  # 4 waits of 50 ms after the first token


async def test_token_bucket_burst_is_immediate() -> None:
    bucket = TokenBucket(rate=10.0)
    started = time.perf_counter()
    await asyncio.gather(*(bucket.acquire() for _ in range(10)))
    assert time.perf_counter() - started < 0.05


def test_token_bucket_rejects_zero_rate() -> None:
    with pytest.raises(ValueError, match="rate"):
        TokenBucket(0)
