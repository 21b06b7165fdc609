"""Idempotency-Key handling: the same key and body return the first response, never a new
instance; the same key with another body is refused (422). Keys are kept at least 24 hours.
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import CursorResult, Table, bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from novita_manager.errors import IdempotencyKeyReused
from novita_manager.store.db import Database
from novita_manager.store.dialects import insert_for
from novita_manager.store.models import IdempotencyKey
from novita_manager.store.types import utcnow

if TYPE_CHECKING:
    from novita_manager.store.dialects import Insert


def body_hash(body: dict[str, Any]) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


KEYS = cast(Table, IdempotencyKey.__table__)
# Built once (per dialect for the insert): building them per create was a fifth of its CPU.
_LOOKUP = select(
    KEYS.c.request_hash, KEYS.c.response_status, KEYS.c.response_body, KEYS.c.instance_id
).where(KEYS.c.key == bindparam("key"))


@functools.cache
def _insert(dialect: str) -> Insert:
    """The key's INSERT for `dialect`, built at its first use (store/dialects.py)."""
    return insert_for(dialect)(KEYS).on_conflict_do_nothing(index_elements=["key"])


@dataclass(frozen=True, slots=True)
class StoredResponse:
    """The first answer given for a key."""

    response_status: int
    response_body: dict[str, Any]
    instance_id: str


async def lookup(db: Database, key: str, request_hash: str) -> StoredResponse | None:
    """The stored first response for `key`; 422 when the key came with another body."""
    async with db.read_session() as session:
        row = (await session.execute(_LOOKUP, {"key": key})).one_or_none()
    if row is None:
        return None
    if row.request_hash != request_hash:
        raise IdempotencyKeyReused(
            "This Idempotency-Key was already used with a different request body"
        )
    return StoredResponse(row.response_status, row.response_body, row.instance_id)


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
    values = {
        "key": key,
        "request_hash": request_hash,
        "instance_id": instance_id,
        "response_status": status,
        "response_body": body,
        "created_at": utcnow(),
    }
    inserted = await session.execute(_insert(dialect), values)
    return cast(CursorResult[Any], inserted).rowcount == 1
