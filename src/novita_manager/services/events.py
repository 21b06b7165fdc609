"""Live events: one poller per process fans the events log out to every open stream.

The database is the source of truth, so every replica streams the same events whichever replica
wrote them. `EventHub` reads `event_log` rows with `id > cursor` every `EVENTS_POLL_INTERVAL`
(one query per process, whatever the number of streams, and none while no stream is open),
and puts each event in the queue of every subscriber that wants it. A stream holds a database
connection only while it reads a page: the replay of what a client missed (`Last-Event-ID`) goes
page by page, and live events come from the hub's queue.

Nothing lost, nothing repeated: a subscriber is registered before it replays, so an event is
either in the replay or arrives in its queue (or both: ids at or below the last one sent are
skipped). A subscriber that falls behind (its queue is full: a slow client) is marked lagged,
and its stream replays from the database again instead of holding events in memory.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from novita_manager.domain.events import (
    EventRecord,
    sse_comment,
    sse_frame,
    sse_position,
    sse_preamble,
)
from novita_manager.errors import ServiceUnavailable
from novita_manager.logging import get_logger
from novita_manager.store import events as store_events
from novita_manager.store.db import Database

log = get_logger(__name__)

PAGE = 500  # events per read
QUEUE_SIZE = 1000  # live events a stream may be behind before it replays from the database
MIN_POLL_GAP = 0.05  # seconds between two reads of the log at least, however many pokes


@dataclass(eq=False)
class Subscriber:
    instance_id: str | None
    queue_size: int = QUEUE_SIZE
    queue: asyncio.Queue[EventRecord] = field(init=False)
    lagged: bool = False
    wake: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self.queue = asyncio.Queue(maxsize=self.queue_size)

    def offer(self, record: EventRecord) -> None:
        if self.instance_id is not None and record.instance_id != self.instance_id:
            return
        if not self.lagged:
            try:
                self.queue.put_nowait(record)
            except asyncio.QueueFull:
                self.lagged = True  # the stream replays from the database
                while not self.queue.empty():
                    self.queue.get_nowait()
        self.wake.set()


class EventHub:
    """The process's poller of the events log and the registry of open streams."""

    def __init__(
        self,
        db: Database,
        *,
        poll_interval: float,
        heartbeat_interval: float,
        max_streams: int,
        on_count: Callable[[int], None] | None = None,
        queue_size: int = QUEUE_SIZE,
    ) -> None:
        self.db = db
        self.queue_size = queue_size
        self.poll_interval = poll_interval
        self.heartbeat_interval = heartbeat_interval
        self.max_streams = max_streams
        self._on_count = on_count
        self._subscribers: set[Subscriber] = set()
        self._cursor: int | None = None
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self._poked = asyncio.Event()
        self._closed = False
        self.polls = 0  # reads of the log (for tests and benchmarks)

    @property
    def open_streams(self) -> int:
        return len(self._subscribers)

    @property
    def closed(self) -> bool:
        return self._closed

    def admit(self) -> None:
        """Refuse a new stream (503) beyond EVENTS_MAX_STREAMS or while shutting down."""
        if self._closed or len(self._subscribers) >= self.max_streams:
            raise ServiceUnavailable(
                f"Too many open event streams ({self.max_streams}, EVENTS_MAX_STREAMS); "
                "retry shortly",
                details={"reason": "event_streams"},
                headers={"Retry-After": "5"},
            )

    async def subscribe(self, instance_id: str | None) -> Subscriber:
        """Register a stream. Returns once the hub knows where the log ends, so that what the
        stream replays next and what it receives meet."""
        subscriber = Subscriber(instance_id, self.queue_size)
        self._subscribers.add(subscriber)
        self._counted()
        if self._task is None or self._task.done():
            self._ready.clear()
            self._task = asyncio.create_task(self._run(), name="event-hub")
        try:
            await self._ready.wait()
        except BaseException:
            self.unsubscribe(subscriber)
            raise
        return subscriber

    def poke(self) -> None:
        """This process committed something that may hold events: read soon, not at the next
        interval (other replicas' events still come with the poll)."""
        if self._subscribers:
            self._poked.set()

    def unsubscribe(self, subscriber: Subscriber) -> None:
        self._subscribers.discard(subscriber)
        self._counted()

    async def close(self) -> None:
        self._closed = True
        for subscriber in list(self._subscribers):
            subscriber.wake.set()
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _counted(self) -> None:
        if self._on_count is not None:
            self._on_count(len(self._subscribers))

    async def _run(self) -> None:
        """Poll while anyone listens; stop (forgetting the cursor) when the last one leaves."""
        failures = 0
        while self._subscribers:
            try:
                if self._cursor is None:
                    async with self.db.read_session() as session:
                        self._cursor = await store_events.newest_id(session)
                    self._ready.set()
                more = await self._poll_once()
                failures = 0
            except Exception as error:  # the database is down: keep the streams, try again
                failures += 1
                if failures in (1, 10) or failures % 100 == 0:
                    log.warning("event_hub_poll_failed", error=str(error)[:200], failures=failures)
                more = False
            if not more:
                await self._wait(self.poll_interval * (1 if failures == 0 else 4))
        self._cursor = None

    async def _wait(self, seconds: float) -> None:
        """Until the next poll: `seconds`, or a poke, but at least MIN_POLL_GAP (under load,
        commits come by the hundred a second; the reads must not)."""
        started = asyncio.get_running_loop().time()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._poked.wait(), seconds)
        self._poked.clear()
        elapsed = asyncio.get_running_loop().time() - started
        if elapsed < MIN_POLL_GAP:
            await asyncio.sleep(MIN_POLL_GAP - elapsed)

    async def _poll_once(self) -> bool:
        """Fan out the next page of the log; True when there may be more at once."""
        assert self._cursor is not None
        await number_new_events(self.db)
        async with self.db.read_session() as session:
            records = await store_events.read_after(session, self._cursor, limit=PAGE)
        self.polls += 1
        for record in records:
            for subscriber in list(self._subscribers):
                subscriber.offer(record)
            self._cursor = record.id
        return len(records) == PAGE


async def number_new_events(db: Database) -> None:
    """Give committed events their number (PostgreSQL: store/events.sequence); a no-op on
    SQLite, whose trigger numbers them at once."""
    if db.dialect == "postgresql":
        async with db.session() as session:
            await store_events.sequence(session)


async def read_page(
    db: Database, after: int, instance_id: str | None, limit: int
) -> list[EventRecord]:
    async with db.read_session() as session:
        return await store_events.read_after(session, after, instance_id=instance_id, limit=limit)


async def newest_id(db: Database) -> int:
    async with db.read_session() as session:
        return await store_events.newest_id(session)


async def stream(
    hub: EventHub, instance_id: str | None, last_event_id: int | None
) -> AsyncIterator[bytes]:
    """The bytes of one event stream: replay after `last_event_id` (None: from now on), then
    live events and heartbeats. Ends when the hub closes; unsubscribes however it ends."""
    yield sse_preamble()
    subscriber = await hub.subscribe(instance_id)
    try:
        last = last_event_id if last_event_id is not None else await newest_id(hub.db)
        yield sse_position(last)  # where a reconnect resumes, even before any event
        while True:
            subscriber.lagged = False
            # Replay: everything committed after `last` (also what the queue dropped).
            while True:
                page = await read_page(hub.db, last, instance_id, PAGE)
                for record in page:
                    yield sse_frame(record)
                    last = record.id
                if len(page) < PAGE:
                    break
            # Live: until the subscriber lags or the hub closes.
            while not subscriber.lagged and not hub.closed:
                while not subscriber.queue.empty():
                    record = subscriber.queue.get_nowait()
                    if record.id > last:
                        yield sse_frame(record)
                        last = record.id
                if subscriber.lagged:
                    break
                subscriber.wake.clear()
                if subscriber.queue.empty() and not subscriber.lagged:
                    try:
                        await asyncio.wait_for(subscriber.wake.wait(), hub.heartbeat_interval)
                    except TimeoutError:
                        yield sse_comment("heartbeat")
            if hub.closed:
                return
    finally:
        hub.unsubscribe(subscriber)


async def history(
    db: Database, instance_id: str, after: int, limit: int
) -> tuple[list[EventRecord], int | None]:
    """A page of one instance's events, oldest first, and the `after` of the next page."""
    await number_new_events(db)  # a replica without streams numbers nothing otherwise
    records = await read_page(db, after, instance_id, limit + 1)
    if len(records) > limit:
        return records[:limit], records[limit - 1].id
    return records, None
