"""Periodic clean-up run by the replica that holds the status-sync lease."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete

from novita_manager.store.db import Database
from novita_manager.store.models import IdempotencyKey
from novita_manager.store.types import utcnow

# Idempotency keys are kept at least this long (CONTRACT.md: "at least 24 h").
IDEMPOTENCY_RETENTION = timedelta(hours=24)
HOUSEKEEPING_EVERY = timedelta(hours=1)


async def purge_expired_idempotency_keys(db: Database) -> int:
    async with db.session() as session, session.begin():
        result = await session.execute(
            delete(IdempotencyKey).where(
                IdempotencyKey.created_at < utcnow() - IDEMPOTENCY_RETENTION
            )
        )
    return int(result.rowcount)  # type: ignore[attr-defined]
