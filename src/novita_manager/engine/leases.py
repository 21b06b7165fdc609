"""Writing under a lease: a worker's result counts only while it still holds the row.

A claim gives a row a fresh `lock_token`. Every write a worker makes is
`UPDATE ... WHERE id = :id AND lock_token = :token`; when the lease expired and another worker
re-claimed the row, the token differs, zero rows match, and the caller rolls back its transaction
(including outbox rows written beside it), so a stale worker can never overwrite newer work.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, cast

from sqlalchemy import CursorResult, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute


class LeaseLost(Exception):
    """The row's lease expired and was taken by another worker: drop this result."""


class LeasedModel(Protocol):
    """What the engine needs of a processed table: an `id` key and `LeasedMixin`'s columns."""

    id: InstrumentedAttribute[Any]
    next_attempt_at: InstrumentedAttribute[datetime | None]
    attempts: InstrumentedAttribute[int]
    last_error: InstrumentedAttribute[str | None]
    lock_owner: InstrumentedAttribute[str | None]
    lock_token: InstrumentedAttribute[str | None]
    lock_expires_at: InstrumentedAttribute[datetime | None]


@dataclass(frozen=True)
class Lease:
    """Proof of a claim: the row, the claim's token and the claiming process."""

    row_id: str
    token: str
    owner: str


UNLOCK: dict[str, Any] = {"lock_owner": None, "lock_token": None, "lock_expires_at": None}


async def write_with_lease(
    session: AsyncSession,
    model: type[Any],
    lease: Lease,
    values: dict[str, Any],
    *,
    release: bool,
) -> bool:
    """UPDATE the leased row with `values` (SQL expressions allowed); True if the lease held.

    With `release=True` the same statement clears the lease, so the row is free (and due again
    if `values` set `next_attempt_at`). Runs in the caller's transaction: on False, roll back.
    """
    leased = cast(type[LeasedModel], model)
    statement = (
        update(model)
        .where(leased.id == lease.row_id, leased.lock_token == lease.token)
        .values({**values, **(UNLOCK if release else {})})
        .execution_options(synchronize_session=False)
    )
    result = cast(CursorResult[Any], await session.execute(statement))
    return result.rowcount == 1


async def release_lease(session: AsyncSession, model: type[Any], lease: Lease) -> bool:
    """Clear the lease if still held (no other change); True if it was."""
    return await write_with_lease(session, model, lease, {}, release=True)


def require(held: bool) -> None:
    """Raise `LeaseLost` when a `write_with_lease` found the lease gone (for early exits)."""
    if not held:
        raise LeaseLost
