from __future__ import annotations

import asyncio

import pytest

from novita_manager.metrics import Metrics
from novita_manager.novita.catalogue import TTLCache


async def test_concurrent_misses_make_one_call_and_entries_expire() -> None:
    now = [0.0]
    metrics = Metrics()
    cache = TTLCache(ttl=10, metrics=metrics, clock=lambda: now[0])
    calls = 0

    async def load() -> str:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.01)
        return f"value-{calls}"

    values = await asyncio.gather(*(cache.get("products", "all", load) for _ in range(50)))
    assert set(values) == {"value-1"}
    assert calls == 1
    now[0] = 9.9
    assert await cache.get("products", "all", load) == "value-1"
    now[0] = 10.1
    assert await cache.get("products", "all", load) == "value-2"
    text = metrics.render().decode()
    assert 'novita_manager_cache_events_total{cache="products",result="miss"} 2.0' in text
    assert 'novita_manager_cache_events_total{cache="products",result="hit"} 50.0' in text


async def test_a_failed_load_is_not_cached() -> None:
    cache = TTLCache(ttl=10, metrics=None, clock=lambda: 0.0)

    async def broken() -> str:
        raise RuntimeError("upstream down")

    async def fine() -> str:
        return "ok"

    with pytest.raises(RuntimeError):
        await cache.get("templates", "1", broken)
    assert await cache.get("templates", "1", fine) == "ok"
