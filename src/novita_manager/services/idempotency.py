"""Idempotency-Key handling: the same key and body return the first response, never a new
instance; the same key with another body is refused (422). Keys are kept at least 24 hours.
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Table, bindparam, select

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
def insert_keys(dialect: str) -> Insert:
    """The keys' INSERT for `dialect` (built at its first use, store/dialects.py): it skips a
    key already stored and returns the keys it wrote, so a batch of creates learns which of
    them lost the race to an earlier request."""
    statement = insert_for(dialect)(KEYS).on_conflict_do_nothing(index_elements=["key"])
    return cast("Insert", statement.returning(KEYS.c.key))


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


def key_row(
    key: str, request_hash: str, instance_id: str, status: int, body: dict[str, Any]
) -> dict[str, Any]:
    """The key's row, stored in the transaction of the create it answers
    (services/create_writer.py writes it with `INSERT ... ON CONFLICT DO NOTHING`)."""
    return {
        "key": key,
        "request_hash": request_hash,
        "instance_id": instance_id,
        "response_status": status,
        "response_body": body,
        "created_at": utcnow(),
    }
