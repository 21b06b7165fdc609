"""Writing under a lease: a worker's result counts only while it still holds the row.

A claim gives a row a fresh `lock_token`. Every write a worker makes is
`UPDATE ... WHERE id = :id AND lock_token = :token`; when the lease expired and another worker
re-claimed the row, the token differs, zero rows match, and the caller rolls back its transaction
(including outbox rows written beside it), so a stale worker can never overwrite newer work.
"""

from __future__ import annotations

import functools
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, cast

from sqlalchemy import (
    ARRAY,
    ClauseElement,
    CursorResult,
    Select,
    Table,
    Update,
    any_,
    bindparam,
    case,
    event,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute, Session


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


@dataclass(frozen=True, slots=True)
class DueSooner:
    """A `next_attempt_at` the UPDATE itself decides: `now` if any condition holds on the row
    at the time of the write, else `later` (a step must not sleep past news written meanwhile).

    Each condition is `(column, ">", value)` or `(column, "is not null", None)`. A value, not a
    SQL expression, so the statement is built once per shape and the values are parameters.
    """

    later: datetime | None
    now: datetime
    conditions: tuple[tuple[str, str, Any], ...]

    def shape(self) -> tuple[tuple[str, str], ...]:
        return tuple((column, op) for column, op, _ in self.conditions)

    def or_if(self, column: str, op: str, value: Any) -> DueSooner:
        return DueSooner(self.later, self.now, (*self.conditions, (column, op, value)))


UNLOCK: dict[str, Any] = {"lock_owner": None, "lock_token": None, "lock_expires_at": None}
_PENDING = "novita_manager.released_leases"
_MAX_REMEMBERED = 10_000
# Tokens whose release committed, so the pipeline can skip its own (then no-op) release UPDATE.
_committed_releases: OrderedDict[str, None] = OrderedDict()
# In a transaction whose leases were checked under lock (`check_leases`): token -> held, and the
# plain lease writes kept for one executemany per statement (`flush_deferred`).
_CHECKED = "novita_manager.checked_leases"
_DEFERRED = "novita_manager.deferred_lease_writes"
_DEFERRED_TOKENS = "novita_manager.deferred_lease_tokens"


async def check_leases(
    session: AsyncSession, model: type[Any], leases: list[Lease], *, dialect: str
) -> None:
    """Read whether each lease still holds, locking the rows (in id order) for the rest of the
    transaction, so that `write_with_lease` can keep their writes for one executemany
    (`flush_deferred`) instead of one round trip each.

    On PostgreSQL the rows are locked `FOR UPDATE` in id order (the order a group commit takes
    them anyway); SQLite's `BEGIN IMMEDIATE` holds the whole database already. A group commit
    of a burst's results wrote one UPDATE per unit: on PostgreSQL, under load, their round trips
    were the larger part of its time (py-spy on `bench.burst`)."""
    if not leases:
        return
    ids = sorted({lease.row_id for lease in leases})
    rows = await session.execute(_lease_check(model.__table__, dialect), {"ids": ids})
    tokens: dict[str, str | None] = {row_id: token for row_id, token in rows}
    checked = session.info.setdefault(_CHECKED, {})
    for lease in leases:
        checked[lease.token] = tokens.get(lease.row_id) == lease.token


@functools.cache
def _lease_check(table: Table, dialect: str) -> Select[Any]:
    """`check_leases`' statement, built once per table. On PostgreSQL the ids are one array
    (`= ANY`): an IN list is rendered anew for each number of ids, and asyncpg prepares each new
    text in a round trip of its own (a group commit's count varies with every transaction)."""
    columns = select(table.c.id, table.c.lock_token).order_by(table.c.id)
    if dialect == "postgresql":
        # SQLAlchemy's ARRAY, not the dialect's: importing `sqlalchemy.dialects.postgresql`
        # here cost a service on SQLite 1 MiB of memory (`tests/test_structure.py`).
        ids = bindparam("ids", type_=ARRAY(table.c.id.type))
        return columns.where(table.c.id == any_(ids)).with_for_update()
    return columns.where(table.c.id.in_(bindparam("ids", expanding=True)))


async def flush_deferred(session: AsyncSession) -> None:
    """Run the lease writes `write_with_lease` kept: one executemany per statement."""
    deferred = session.info.pop(_DEFERRED, None)
    session.info.pop(_DEFERRED_TOKENS, None)
    for statement, parameters in (deferred or {}).items():
        result = cast(CursorResult[Any], await session.execute(statement, parameters))
        if 0 <= result.rowcount < len(parameters):  # (asyncpg's executemany reports -1)
            # Cannot happen while the rows stay locked; if it did, the group commit rolls back
            # and runs each unit alone, where every write checks its own lease.
            raise LeaseLost(f"{len(parameters) - result.rowcount} leases lost after their check")


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
    # A Core statement on the table: the ORM's bulk-UPDATE machinery (compile state, session
    # synchronisation) cost more than the statement itself, several times per row and step.
    table = model.__table__
    if any(isinstance(value, ClauseElement) for value in values.values()):
        statement = (
            update(table)
            .where(table.c.id == lease.row_id, table.c.lock_token == lease.token)
            .values({**values, **(UNLOCK if release else {})})
        )
        result = cast(CursorResult[Any], await session.execute(statement))
    else:  # plain values: a statement built once per shape, the values as its parameters
        parameters: dict[str, Any] = {}
        shape: list[Any] = []
        for key, value in values.items():
            if isinstance(value, DueSooner):
                shape.append((key, value.shape()))
                parameters[f"v_{key}"] = value.later
                parameters[f"n_{key}"] = value.now
                for index, (_, _, operand) in enumerate(value.conditions):
                    parameters[f"c_{key}_{index}"] = operand
            else:
                shape.append(key)
                parameters[f"v_{key}"] = value
        parameters.update(l_id=lease.row_id, l_token=lease.token)
        statement = _plain_update(table, tuple(shape), release)
        checked = session.info.get(_CHECKED)
        if checked is not None and lease.token in checked:
            # Checked under lock (`check_leases`): the answer is known and cannot change before
            # the commit, so the write waits for one executemany of its statement.
            if not checked[lease.token]:
                return False
            tokens = session.info.setdefault(_DEFERRED_TOKENS, set())
            if lease.token in tokens:  # a second write of the row: in order, after the first
                await flush_deferred(session)
                result = cast(CursorResult[Any], await session.execute(statement, parameters))
            else:
                tokens.add(lease.token)
                session.info.setdefault(_DEFERRED, {}).setdefault(statement, []).append(parameters)
                if release:
                    session.info.setdefault(_PENDING, set()).add(lease.token)
                return True
        else:
            result = cast(CursorResult[Any], await session.execute(statement, parameters))
    held: bool = result.rowcount == 1
    if held and release:
        session.info.setdefault(_PENDING, set()).add(lease.token)
    return held


_PLAIN_UPDATES: dict[tuple[Any, tuple[Any, ...], bool], Update] = {}


def _plain_update(table: Any, keys: tuple[Any, ...], release: bool) -> Update:
    """`UPDATE table SET key = :v_key, ... WHERE id = :l_id AND lock_token = :l_token`, cached:
    building and keying the statement per write cost about as much as executing it. A key may
    be `(key, DueSooner.shape())`: `key = CASE WHEN <conditions> THEN :n_key ELSE :v_key END`."""
    cache_key = (table, keys, release)
    statement = _PLAIN_UPDATES.get(cache_key)
    if statement is None:
        sets: dict[str, Any] = {}
        for entry in keys:
            if isinstance(entry, tuple):
                key, conditions = entry
                sets[key] = _sooner(table, key, conditions)
            else:
                sets[entry] = bindparam(f"v_{entry}", type_=table.c[entry].type)
        if release:
            sets.update(UNLOCK)
        statement = (
            update(table)
            .where(table.c.id == bindparam("l_id"), table.c.lock_token == bindparam("l_token"))
            .values(sets)
        )
        _PLAIN_UPDATES[cache_key] = statement
    return statement


def _sooner(table: Any, key: str, conditions: tuple[tuple[str, str], ...]) -> Any:
    column_type = table.c[key].type
    whens = []
    for index, (column, op) in enumerate(conditions):
        target = table.c[column]
        if op == ">":
            condition = target > bindparam(f"c_{key}_{index}", type_=target.type)
        elif op == "is not null":
            condition = target.is_not(None)
        else:
            raise ValueError(f"unknown condition {op!r}")
        whens.append((condition, bindparam(f"n_{key}", type_=column_type)))
    return case(*whens, else_=bindparam(f"v_{key}", type_=column_type))


def release_committed(lease: Lease) -> bool:
    """True once: a `write_with_lease(..., release=True)` for this lease has committed."""
    try:
        del _committed_releases[lease.token]
    except KeyError:
        return False
    return True


@event.listens_for(Session, "after_commit")
def _remember_releases(session: Session) -> None:
    for token in session.info.pop(_PENDING, ()):
        _committed_releases[token] = None
    while len(_committed_releases) > _MAX_REMEMBERED:
        _committed_releases.popitem(last=False)


@event.listens_for(Session, "after_rollback")
def _forget_releases(session: Session) -> None:
    session.info.pop(_PENDING, None)


def require(held: bool) -> None:
    """Raise `LeaseLost` when a `write_with_lease` found the lease gone (for early exits)."""
    if not held:
        raise LeaseLost
