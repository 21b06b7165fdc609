"""The claim of a pipeline: one `UPDATE ... RETURNING` that leases the next due rows.

`UPDATE <table> SET <lease> WHERE id IN (<the due rows in claim order, LIMIT n, and on
PostgreSQL FOR UPDATE SKIP LOCKED>) RETURNING <the rows>`. It replaced a SELECT of the whole rows
and an executemany of one lease UPDATE per row: twice the round trips, and on PostgreSQL the sort
of whole rows (2.3 ms a claim with 1,000 due) and the single-row UPDATEs were a fifth of the
server's time in a burst (`bench.burst`, pg_stat_statements). Built once per pipeline, with the
time, the limit and the lease as parameters (`claim_parameters`).

Each row's token is the claim's random part (`PREFIX_BYTES` hex-encoded) followed by the row's
id: unique per claim and row, as engine/leases.py needs (it keys checked and released leases by
token). It must fit `lock_token`: `claim_statement` checks that against the columns' lengths.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ARRAY,
    ColumnElement,
    Integer,
    String,
    Update,
    any_,
    bindparam,
    case,
    func,
    select,
    type_coerce,
    update,
)

PREFIX_BYTES = 8


def claim_statement(
    model: type[Any],
    due: ColumnElement[bool],
    first: ColumnElement[bool] | None,
    *,
    owner: str,
    dialect: str,
) -> Update:
    """The claim of `model`'s rows matching `due` (parameter `now`): `first` rows before the
    others, then in the order they became due. Returns the rows, and with `first` their rank."""
    columns = model.__table__.c
    id_length, token_length = columns.id.type.length, columns.lock_token.type.length
    if id_length is None or (
        token_length is not None and 2 * PREFIX_BYTES + id_length > token_length
    ):
        raise ValueError(f"a claim's token (prefix and id) must fit {model.__name__}.lock_token")
    order: list[Any] = [model.next_attempt_at]
    rank = None if first is None else case((first, 0), else_=1)
    if rank is not None:
        order.insert(0, rank)
    chosen = select(model.id).where(due).order_by(*order)
    chosen = chosen.limit(bindparam("limit", type_=Integer)).correlate(None)
    which = model.id.in_(chosen.scalar_subquery())
    if dialect == "postgresql":
        chosen = chosen.with_for_update(skip_locked=True)
        # `id = ANY(ARRAY(<chosen>))`: the chosen ids once (an InitPlan), then the primary key.
        # `id IN (<chosen>)` was a hash semi-join over a scan of the whole table.
        which = model.id == any_(type_coerce(func.array(chosen.scalar_subquery()), ARRAY(String)))
    returned: list[Any] = [model] if rank is None else [model, rank]
    return (
        update(model)
        .where(which)
        .values(
            lock_owner=owner,
            lock_token=bindparam("token", type_=String) + model.id,
            lock_expires_at=bindparam("expires"),
        )
        .returning(*returned)
        .execution_options(synchronize_session=False)
    )


def claim_parameters(now: datetime, limit: int, lease_seconds: float) -> dict[str, Any]:
    """The parameters of one claim: its time, size, token prefix and lease expiry."""
    return {
        "now": now,
        "limit": limit,
        "token": os.urandom(PREFIX_BYTES).hex(),
        "expires": now + timedelta(seconds=lease_seconds),
    }


def in_claim_order(result: Any, *, ranked: bool) -> list[Any]:
    """The claimed rows in claim order (RETURNING gives them in no set order); `result`: the
    claim's `Result`, of rows or, when `ranked`, of (row, rank)."""
    if not ranked:
        rows = [(0, row) for row in result.scalars()]
    else:
        rows = [(rank, row) for row, rank in result]
    rows.sort(key=lambda item: (item[0], item[1].next_attempt_at))
    return [row for _, row in rows]
