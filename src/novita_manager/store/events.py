"""The durable events log (`event_log`): numbering after commit, pages after a number, the newest.

Why a log of its own: the stream must be resumable with one number (`Last-Event-ID`) that orders
status changes (`instance_events`, integer ids) and webhook events (`webhook_deliveries`, string
ids) together, across replicas. Each log row points at one of them, and the row is written by a
database trigger on their inserts (migration 0005), so every writer of either table, today's or
a future one (a new webhook type is just a new outbox row), feeds the log in its own
transaction without knowing of it.

Commit order. A reader that keeps `last` and asks for `seq > last` must never see a number
committed after a larger one was read, or it skips it forever. On SQLite there is one writer at
a time, and the trigger gives `seq` in the writer's transaction. On PostgreSQL, concurrent
transactions would take numbers in one order and commit in another, and making writers take a
lock up to their commit serialised every commit that records an event (measured: 8 concurrent
writers of one event each, 67-85 instead of 126-202 transactions/s). So there the trigger leaves
`seq` empty and `sequence` numbers committed rows afterwards: one sequencer at a time (a
transaction advisory lock, tried, never waited for: if another replica is numbering, this one
skips), each numbering only rows it sees committed, above every number before. A later
sequencer starts after the earlier one committed, so numbers become visible in their order.
Rows are numbered in the order of their ids, so the events of one transaction (a status change
and the webhook it fires) keep their order. The hub calls `sequence` before each read
(services/events.py), so numbering adds no delay to the stream.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from novita_manager.domain.events import EventRecord, status_body
from novita_manager.store.models import EventLogEntry, Instance, InstanceEvent, WebhookDelivery

# "novita-manager events": shared by every replica (the migrations use 0x4E4D_4D49_4752).
SEQUENCER_LOCK_KEY = 0x4E4D_4556_4E54
SEQUENCE_BATCH = 5000  # rows numbered per sequencer transaction at most

event_log = EventLogEntry.__table__

_COLUMNS = (
    event_log.c.seq,
    event_log.c.instance_id,
    Instance.name,
    InstanceEvent.at,
    InstanceEvent.from_status,
    InstanceEvent.to_status,
    InstanceEvent.novita_status,
    InstanceEvent.reason,
    WebhookDelivery.event_type,
    WebhookDelivery.payload,
)


async def sequence(session: AsyncSession) -> int:
    """Number the committed rows that have no `seq` yet (PostgreSQL; nothing to do on SQLite).
    Commits. Returns how many were numbered (0 when another replica holds the sequencer)."""
    if session.get_bind().dialect.name != "postgresql":
        return 0
    async with session.begin():
        locked = await session.execute(
            text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": SEQUENCER_LOCK_KEY}
        )
        if not locked.scalar_one():
            return 0
        numbered = await session.execute(_NUMBER, {"batch": SEQUENCE_BATCH})
        return int(numbered.rowcount or 0)  # type: ignore[attr-defined]


# Each statement of a READ COMMITTED transaction sees every commit before it: after the lock,
# MAX(seq) includes the previous sequencer's numbers.
_NUMBER = text(
    "UPDATE event_log SET seq = todo.number FROM ("
    " SELECT id, (SELECT COALESCE(MAX(seq), 0) FROM event_log)"
    "   + ROW_NUMBER() OVER (ORDER BY id) AS number"
    " FROM event_log WHERE seq IS NULL ORDER BY id LIMIT :batch"
    ") AS todo WHERE event_log.id = todo.id"
)


async def read_after(
    session: AsyncSession, after: int, *, instance_id: str | None = None, limit: int = 500
) -> list[EventRecord]:
    """Up to `limit` numbered events with `seq > after`, in order (only `instance_id`'s if
    given)."""
    query = (
        select(*_COLUMNS)
        .select_from(
            event_log.outerjoin(InstanceEvent, InstanceEvent.id == event_log.c.history_id)
            .outerjoin(WebhookDelivery, WebhookDelivery.id == event_log.c.delivery_id)
            .outerjoin(Instance, Instance.id == event_log.c.instance_id)
        )
        .where(event_log.c.seq > after)
        .order_by(event_log.c.seq)
        .limit(limit)
    )
    if instance_id is not None:
        query = query.where(event_log.c.instance_id == instance_id)
    rows = (await session.execute(query)).all()
    return [record for row in rows if (record := _record(row)) is not None]


async def newest_id(session: AsyncSession) -> int:
    """The number of the newest numbered event (0 when there is none)."""
    value = (await session.execute(select(func.max(event_log.c.seq)))).scalar_one_or_none()
    return int(value or 0)


def _record(row: Any) -> EventRecord | None:
    (
        log_id,
        instance_id,
        name,
        at,
        from_status,
        to_status,
        novita_status,
        reason,
        kind,
        payload,
    ) = row
    if kind is not None:
        body = payload if isinstance(payload, dict) else {"type": kind, "data": payload}
        return EventRecord(id=log_id, instance_id=instance_id, type=kind, body=body)
    if to_status is None:  # its source row is gone (cannot happen with the cascades)
        return None
    body = status_body(
        instance_id=instance_id,
        name=name,
        at=at,
        from_status=from_status,
        to_status=to_status,
        novita_status=novita_status,
        reason=reason,
    )
    return EventRecord(id=log_id, instance_id=instance_id, type=body["type"], body=body)
