"""Per-destination caps and breakers (pure), and per-instance ordering through the pipeline."""

from __future__ import annotations

import asyncio
from collections import deque
from pathlib import Path

import pytest

from novita_manager.engine.webhook_delivery import build_webhook_pipeline, webhook_sender_of
from novita_manager.engine.webhook_destinations import Destinations, destination_of, host_of
from novita_manager.metrics import Metrics
from novita_manager.store.db import Database
from tests.fixtures.waiting import wait_until
from tests.fixtures.webhook_receiver import WebhookReceiver
from tests.webhooks.factories import add_delivery, add_instance, fast_settings, load_delivery


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make(clock: Clock, cap: int = 2, threshold: int = 3) -> Destinations:
    destinations = Destinations(per_host_cap=cap, threshold=threshold, cooldown=10, park_for=5)
    destinations._now = clock
    return destinations


@pytest.mark.parametrize(
    ("url", "key"),
    [
        ("https://Hooks.Example.com/x?token=s", "hooks.example.com:443"),
        ("http://hooks.example.com/x", "hooks.example.com:80"),
        ("http://127.0.0.1:8080/x", "127.0.0.1:8080"),
        ("http://[::1]:9000/x", "[::1]:9000"),
    ],
)
def test_destination_is_host_and_port(url: str, key: str) -> None:
    assert destination_of(url) == key
    assert host_of(key) == key.rsplit(":", 1)[0]


def test_cap_parks_the_excess_and_a_freed_slot_pulls_one_forward() -> None:
    d = make(Clock())
    assert d.admit("h:1", "a").admitted
    assert d.admit("h:1", "b").admitted
    busy = d.admit("h:1", "c")
    assert (busy.admitted, busy.reason, busy.wait) == (False, "busy", 5)
    assert d.admit("other:1", "x").admitted  # another destination is unaffected
    assert d.release("h:1", answered=True) == ["c"]


async def test_a_flowing_destination_hands_a_freed_slot_to_a_waiter_without_parking() -> None:
    clock = Clock()
    d = make(clock)
    assert d.admit("h:1", "a").admitted
    assert d.admit("h:1", "b").admitted
    waiting = asyncio.create_task(d.admit_or_wait("h:1", "c"))
    await asyncio.sleep(0)  # it waits: the destination is new, so flowing
    assert not waiting.done()
    assert d.release("h:1", answered=True) == []  # the slot went to the waiter, nothing parked
    admission = await waiting
    assert admission.admitted
    assert d.get("h:1").in_flight == 2
    assert d.get("h:1").parked == []


async def test_a_destination_that_stopped_flowing_defers_at_once() -> None:
    clock = Clock()
    d = make(clock)
    assert d.admit("h:1", "a").admitted
    assert d.admit("h:1", "b").admitted
    clock.now += 5  # no slot freed for longer than the flow window: maybe hanging
    admission = await d.admit_or_wait("h:1", "c")
    assert (admission.admitted, admission.reason) == (False, "busy")
    assert d.get("h:1").parked == ["c"]


async def test_waiters_give_up_after_the_wait_and_when_the_breaker_opens() -> None:
    clock = Clock()
    d = make(clock, cap=2, threshold=1)
    assert d.admit("h:1", "a").admitted
    assert d.admit("h:1", "b").admitted
    late = await d.admit_or_wait("h:1", "c", max_wait=0.01)
    assert (late.admitted, late.reason) == (False, "busy")  # waited, no slot came: deferred
    waiting = asyncio.create_task(d.admit_or_wait("h:1", "d"))
    await asyncio.sleep(0)
    d.release("h:1", answered=False)  # the breaker opens: the waiter is deferred, not served
    admission = await waiting
    assert (admission.admitted, admission.reason) == (False, "open")
    assert d.get("h:1").waiters == deque()


async def test_at_most_max_waiters_wait() -> None:
    d = Destinations(per_host_cap=1, threshold=3, cooldown=10, park_for=5, max_waiters=1)
    assert d.admit("h:1", "a").admitted
    first = asyncio.create_task(d.admit_or_wait("h:1", "b"))
    await asyncio.sleep(0)
    second = await d.admit_or_wait("h:1", "c")  # the one place is taken: deferred at once
    assert (second.admitted, second.reason) == (False, "busy")
    d.release("h:1", answered=True)
    assert (await first).admitted


def test_breaker_opens_after_consecutive_failures_then_one_probe_decides() -> None:
    clock = Clock()
    d = make(clock, cap=5)
    for row in ("a", "b", "c"):
        assert d.admit("h:1", row).admitted
    d.release("h:1", answered=False)
    d.release("h:1", answered=False)
    assert d.state_of("h:1") == "closed"
    d.release("h:1", answered=False)
    assert d.state_of("h:1") == "open"
    waiting = d.admit("h:1", "d")
    assert not waiting.admitted
    assert waiting.reason == "open"
    assert 10 <= waiting.wait <= 11
    clock.now += 10
    probe = d.admit("h:1", "d")
    assert probe.admitted
    assert probe.probe
    assert d.admit("h:1", "e").reason == "probing"  # one probe at a time
    d.release("h:1", answered=False, probe=True)  # the probe failed: open again, twice as long
    assert d.state_of("h:1") == "open"
    clock.now += 15
    assert d.admit("h:1", "f").reason == "open"
    clock.now += 6
    assert d.admit("h:1", "f").probe
    assert d.release("h:1", answered=True, probe=True) == ["e"]  # back: the parked rows go
    assert d.state_of("h:1") == "closed"


def test_a_4xx_answer_is_alive_and_a_refusal_is_neutral() -> None:
    d = make(Clock(), threshold=1)
    assert d.admit("h:1", "a").admitted
    d.release("h:1", answered=None)
    assert d.state_of("h:1") == "closed"
    assert d.admit("h:1", "b").admitted
    d.release("h:1", answered=True)
    assert d.get("h:1").failures == 0


async def test_events_of_one_instance_are_delivered_in_order(
    tmp_path: Path, webhook_receiver: WebhookReceiver
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/order.db"
    db = await Database.open(url)
    pipeline = build_webhook_pipeline(
        db, fast_settings(url, webhook_retry_base=0.05), Metrics(), "order"
    )
    try:
        webhook_receiver.fail(2)  # the first event fails twice before it is delivered
        instance = await add_instance(db)
        first = await add_delivery(db, instance, webhook_receiver.url)
        await asyncio.sleep(0.01)
        second = await add_delivery(db, instance, webhook_receiver.url, event_type="x.second")
        await pipeline.start()
        requests = await webhook_receiver.until(4, timeout=10)
        ids = [r.headers["webhook-id"] for r in requests]
        assert ids == [first, first, first, second]
        for delivery_id in (first, second):  # recorded just after the receiver answered

            async def delivered(which: str = delivery_id) -> bool:
                return (await load_delivery(db, which)).status == "delivered"

            await wait_until(delivered, what=f"{delivery_id} recorded as delivered")
    finally:
        await pipeline.stop(drain_timeout=2)
        await webhook_sender_of(pipeline).aclose()
        await db.close()
