"""The client's token bucket."""

from __future__ import annotations

import asyncio
import time

import pytest

from novita_manager.novita.ratelimit import TokenBucket


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
