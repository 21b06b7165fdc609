"""The client's pacer (UPSTREAM_RATE_LIMIT): `rate` calls per second, bursts of one second."""

from __future__ import annotations

import asyncio
import time

import pytest

from novita_manager.novita.session import pacer


async def test_pacer_limits_rate() -> None:
    limiter = pacer(20.0)  # 20 per second: a burst of 20, then one every 50 ms
    await asyncio.gather(*(limiter.acquire() for _ in range(20)))
    started = time.perf_counter()
    await asyncio.gather(*(limiter.acquire() for _ in range(5)))
    elapsed = time.perf_counter() - started
    assert 0.2 <= elapsed < 1.0  # 5 waits of 50 ms once the burst is spent


async def test_pacer_burst_is_immediate() -> None:
    limiter = pacer(10.0)
    started = time.perf_counter()
    await asyncio.gather(*(limiter.acquire() for _ in range(10)))
    assert time.perf_counter() - started < 0.05


async def test_pacer_below_one_per_second_bursts_one() -> None:
    limiter = pacer(0.5)
    await limiter.acquire()
    assert not limiter.has_capacity()  # the next call waits two seconds


def test_pacer_rejects_zero_rate() -> None:
    with pytest.raises(ValueError, match="rate"):
        pacer(0)
