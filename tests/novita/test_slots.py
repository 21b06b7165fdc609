"""Upstream slots: at most `limit` calls at once; an urgent waiter is served before the others."""

from __future__ import annotations

import asyncio

import pytest

from novita_manager.novita.slots import UpstreamSlots


async def test_an_urgent_waiter_takes_the_next_slot_before_earlier_waiters() -> None:
    slots = UpstreamSlots(1)
    order: list[str] = []
    release = asyncio.Event()

    async def call(name: str, urgent: bool = False) -> None:
        async with slots.slot(urgent=urgent):
            order.append(name)
            await release.wait()

    holder = asyncio.create_task(call("holder"))
    await asyncio.sleep(0)
    waiters = [asyncio.create_task(call(f"create-{i}")) for i in range(3)]
    await asyncio.sleep(0)
    waiters.append(asyncio.create_task(call("details", urgent=True)))
    await asyncio.sleep(0)
    assert (order, slots.waiting) == (["holder"], 4)
    release.set()
    await asyncio.gather(holder, *waiters)
    assert order == ["holder", "details", "create-0", "create-1", "create-2"]
    assert slots.waiting == 0


async def test_never_more_than_the_limit_at_once_and_every_call_served() -> None:
    slots = UpstreamSlots(3)
    inside = peak = 0

    async def call(i: int) -> None:
        nonlocal inside, peak
        async with slots.slot(urgent=i % 4 == 0):
            inside += 1
            peak = max(peak, inside)
            await asyncio.sleep(0.001)
            inside -= 1

    await asyncio.gather(*(call(i) for i in range(40)))
    assert (peak, inside, slots.waiting) == (3, 0, 0)


async def test_a_cancelled_waiter_leaves_no_slot_behind() -> None:
    slots = UpstreamSlots(1)
    await slots.acquire()
    cancelled = asyncio.create_task(slots.acquire(urgent=True))
    other = asyncio.create_task(slots.acquire())
    await asyncio.sleep(0)
    cancelled.cancel()
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    slots.release()  # the holder's: goes to `other`, not to the cancelled waiter
    await asyncio.wait_for(other, 1)
    slots.release()
    await asyncio.wait_for(slots.acquire(), 1)  # the slot is free again


async def test_a_waiter_cancelled_as_it_is_handed_the_slot_passes_it_on() -> None:
    slots = UpstreamSlots(1)
    await slots.acquire()
    first = asyncio.create_task(slots.acquire())
    second = asyncio.create_task(slots.acquire())
    await asyncio.sleep(0)
    slots.release()  # handed to `first`, which is cancelled before it runs
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    await asyncio.wait_for(second, 1)  # the slot went on to `second`
