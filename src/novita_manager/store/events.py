"""Reads of the durable events log (`event_log`): pages after an id, and the newest id.

Why a log of its own: the stream must be resumable with one number (`Last-Event-ID`) that orders
status changes (`instance_events`, integer ids) and webhook events (`webhook_deliveries`, string
ids) together, across replicas. Each log row points at one of them, and the row is written by a
database trigger on their inserts (migration 0005), so every writer of either table, today's or
a future one (a new webhook type is just a new outbox row), feeds the log in its own
transaction without knowing of it.

Commit order. A reader that keeps `last` and asks for `id > last` must never see an id committed
after a larger one was read, or it skips it forever. SQLite has one writer at a time, so ids are
given in commit order. On PostgreSQL concurrent transactions take sequence values in one order
and commit in another, so the trigger first takes a transaction-level advisory lock
(`EVENT_LOG_LOCK_KEY`): the transactions that write events commit one after the other, each
holding the lock from its first event to its commit, which is short (the engine inserts its rows
at the end of a transaction, engine/group_commit.py). Writers should insert history and outbox
rows last in their transactions: the lock is then held only for the commit.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from novita_manager.domain.events import EventRecord, status_body
from novita_manager.store.models import EventLogEntry, Instance, InstanceEvent, WebhookDelivery

# "novita-manager events": shared by every replica (the migrations use 0x4E4D_4D49_4752).
EVENT_LOG_LOCK_KEY = 0x4E4D_4556_4E54

event_log = EventLogEntry.__table__

_COLUMNS = (
    event_log.c.id,
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


async def read_after(
    session: AsyncSession, after: int, *, instance_id: str | None = None, limit: int = 500
) -> list[EventRecord]:
    """Up to `limit` events with `id > after`, oldest first (only `instance_id`'s if given)."""
    query = (
        select(*_COLUMNS)
        .select_from(
            event_log.outerjoin(InstanceEvent, InstanceEvent.id == event_log.c.history_id)
            .outerjoin(WebhookDelivery, WebhookDelivery.id == event_log.c.delivery_id)
            .outerjoin(Instance, Instance.id == event_log.c.instance_id)
        )
        .where(event_log.c.id > after)
        .order_by(event_log.c.id)
        .limit(limit)
    )
    if instance_id is not None:
        query = query.where(event_log.c.instance_id == instance_id)
    rows = (await session.execute(query)).all()
    return [record for row in rows if (record := _record(row)) is not None]


async def newest_id(session: AsyncSession) -> int:
    """The id of the newest event (0 when the log is empty)."""
    value = (await session.execute(select(func.max(event_log.c.id)))).scalar_one_or_none()
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
