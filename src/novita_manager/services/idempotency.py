"""Idempotency-Key handling: the same key and body return the first response, never a new
instance; the same key with another body is refused (422). Keys are kept at least 24 hours.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, cast

from sqlalchemy import CursorResult, Table, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from novita_manager.errors import IdempotencyKeyReused
from novita_manager.store.db import Database
from novita_manager.store.models import IdempotencyKey
from novita_manager.store.types import utcnow


def body_hash(body: dict[str, Any]) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


async def lookup(db: Database, key: str, request_hash: str) -> IdempotencyKey | None:
    """The stored first response for `key`; 422 when the key came with another body."""
    async with db.read_session() as session:
        row = (
            await session.execute(select(IdempotencyKey).where(IdempotencyKey.key == key))
        ).scalar_one_or_none()
    if row is None:
        return None
    if row.request_hash != request_hash:
        raise IdempotencyKeyReused(
            "This Idempotency-Key was already used with a different request body"
        )
    return row


async def store(
    session: AsyncSession,
    key: str,
    request_hash: str,
    instance_id: str,
    status: int,
    body: dict[str, Any],
) -> bool:
    """Insert the key in the caller's transaction; False when another request won the race.

    One `INSERT ... ON CONFLICT DO NOTHING` (both dialects): the ORM's flush inside a savepoint
    cost more than the rest of a create (profiled on the lifecycle benchmark)."""
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    statement = (
        (postgresql if dialect == "postgresql" else sqlite)
        .insert(cast(Table, IdempotencyKey.__table__))  # Core: no ORM bulk-insert pass
        .values(
            key=key,
            request_hash=request_hash,
            instance_id=instance_id,
            response_status=status,
            response_body=body,
            created_at=utcnow(),
        )
        .on_conflict_do_nothing(index_elements=["key"])
    )
    inserted = await session.execute(statement)
    return cast(CursorResult[Any], inserted).rowcount == 1
