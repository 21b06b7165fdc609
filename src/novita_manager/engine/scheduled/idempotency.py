"""The idempotency-key purge: keys are kept 24 h (CONTRACT.md: "at least 24 h"), then deleted."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete

from novita_manager.engine.scheduled.runner import ScheduledTask
from novita_manager.store.db import Database
from novita_manager.store.models import IdempotencyKey
from novita_manager.store.types import utcnow

IDEMPOTENCY_TASK = "idempotency-purge"
IDEMPOTENCY_RETENTION = timedelta(hours=24)
PURGE_EVERY = timedelta(hours=1)


async def purge_expired_idempotency_keys(db: Database) -> int:
    """Delete the keys older than the retention; returns how many."""
    async with db.session() as session, session.begin():
        result = await session.execute(
            delete(IdempotencyKey).where(
                IdempotencyKey.created_at < utcnow() - IDEMPOTENCY_RETENTION
            )
        )
    return int(result.rowcount)  # type: ignore[attr-defined]


def idempotency_purge_task(db: Database) -> ScheduledTask:
    async def run() -> int:
        return await purge_expired_idempotency_keys(db)

    return ScheduledTask(IDEMPOTENCY_TASK, PURGE_EVERY.total_seconds(), run)
