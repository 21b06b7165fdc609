"""The event hub over a real database (SQLite and PostgreSQL): one poll per interval whatever the
number of streams, no connection held while idle, a lagging stream replays from the database."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from novita_manager.errors import ServiceUnavailable
from novita_manager.sdk.events import SseParser, StreamEvent
from novita_manager.services.events import EventHub, stream
from novita_manager.store.db import Database
from tests.fixtures.waiting import wait_until
from tests.store.test_events_log import add_history
from tests.webhooks.factories import add_delivery, add_instance


class Reader:
    """Consumes one stream's bytes as a client would, parsing its events."""

    def __init__(self, chunks: AsyncIterator[bytes], *, paused: bool = False) -> None:
        self.chunks = chunks
        self.events: list[StreamEvent] = []
        self.comments = 0
        self.parser = SseParser()
        self.go = asyncio.Event()
        if not paused:
            self.go.set()
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        parser = self.parser
        async for chunk in self.chunks:
            if self.parser.position is not None:
                await self.go.wait()  # a slow client: the stream waits on its writes
            for line in chunk.decode().split("\n"):
                self.comments += line.startswith(": heartbeat")
                event = parser.feed(line)
                if event is not None:
                    self.events.append(event)

    async def close(self) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)
        await self.chunks.aclose()  # type: ignore[attr-defined]


def hub_on(db: Database, **overrides: float) -> EventHub:
    options = {"poll_interval": 0.05, "heartbeat_interval": 5.0, "max_streams": 100}
    options.update(overrides)
    return EventHub(db, **options)  # type: ignore[arg-type]


async def test_many_streams_share_one_poll_and_hold_no_connection_while_idle(
    db: Database,
) -> None:
    hub = hub_on(db)
    instance_id = await add_instance(db)
    readers = [Reader(stream(hub, None, None)) for _ in range(40)]
    # Set up once each has its position (the id it continues after): from then on, no loss.
    await wait_until(
        lambda: _true(all(r.parser.position is not None for r in readers)), what="40 streams"
    )
    assert hub.open_streams == 40
    await add_history(db, instance_id, "running", "one")
    await add_delivery(db, instance_id, None, status="skipped")
    await wait_until(
        lambda: _true(all(len(r.events) == 2 for r in readers)), what="every stream's events"
    )
    assert {tuple(e.type for e in r.events) for r in readers} == {
        ("instance.status", "instance.running")
    }
    polls = hub.polls
    in_use = []
    for _ in range(50):
        await asyncio.sleep(0.01)
        in_use.append(db.engine.pool.checkedout())  # type: ignore[attr-defined]
    # About one read every 50 ms for the process, not 40 (one per stream) ...
    assert hub.polls - polls <= 0.5 / 0.05 + 2
    # ... and the idle streams hold no connection: at most the hub's poll has one, briefly.
    assert max(in_use) <= 1
    assert in_use.count(0) > len(in_use) / 2
    for reader in readers:
        await reader.close()
    assert hub.open_streams == 0
    await hub.close()


async def test_a_lagging_stream_replays_from_the_database_in_order(db: Database) -> None:
    hub = hub_on(db, queue_size=3)
    instance_id = await add_instance(db)
    slow = Reader(stream(hub, instance_id, 0), paused=True)
    await wait_until(lambda: _true(slow.parser.position is not None), what="the stream")
    for index in range(12):
        await add_history(db, instance_id, "running", f"change {index}")
    await asyncio.sleep(0.3)  # the hub offers 12 events to a queue of 3: it lags
    slow.go.set()
    await wait_until(lambda: _true(len(slow.events) >= 12), what="all twelve")
    reasons = [e.data["reason"] for e in slow.events]
    assert reasons == [f"change {index}" for index in range(12)]
    assert [e.id for e in slow.events] == sorted({e.id for e in slow.events})
    await slow.close()
    await hub.close()


async def test_filter_heartbeat_and_cap(db: Database) -> None:
    hub = hub_on(db, heartbeat_interval=0.1, max_streams=1)
    mine, other = await add_instance(db), await add_instance(db)
    reader = Reader(stream(hub, mine, None))
    await wait_until(lambda: _true(reader.parser.position is not None), what="the stream")
    with pytest.raises(ServiceUnavailable):  # a second stream: 503
        hub.admit()
    await add_history(db, other, "running", "not mine")
    await add_history(db, mine, "running", "mine")
    await wait_until(lambda: _true(len(reader.events) == 1), what="my event")
    await wait_until(lambda: _true(reader.comments >= 2), what="heartbeats")
    assert reader.events[0].data["reason"] == "mine"
    await reader.close()
    await hub.close()


async def _true(value: bool) -> bool:
    return value


async def test_concurrent_writers_every_event_once_in_order(db: Database) -> None:
    """Writers commit concurrently (on PostgreSQL in any order); a stream opened before them
    gets every event exactly once, in the order of the numbers, none skipped."""
    hub = hub_on(db)
    instances = [await add_instance(db) for _ in range(6)]
    reader = Reader(stream(hub, None, None))
    await wait_until(lambda: _true(reader.parser.position is not None), what="the stream")

    async def write(instance_id: str) -> None:
        for index in range(25):
            await add_history(db, instance_id, "running", f"{instance_id}-{index}")

    await asyncio.gather(*(write(i) for i in instances))
    await wait_until(lambda: _true(len(reader.events) >= 150), 20, "all 150 events")
    await asyncio.sleep(0.3)  # nothing more may come
    ids = [e.id for e in reader.events]
    assert ids == sorted(set(ids))
    assert len(ids) == 150
    for instance_id in instances:  # each writer's events in its own order
        mine = [e.data["reason"] for e in reader.events if e.data["instanceId"] == instance_id]
        assert mine == [f"{instance_id}-{index}" for index in range(25)]
    await reader.close()
    await hub.close()
