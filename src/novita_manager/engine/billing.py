"""Recording billed periods as observations arrive (the arithmetic is in domain/costs.py).

Whoever writes an observation (the status sync, or a provisioning step's GET) carries the open
period in it with `costs.carry_billing`; a period that closes is recorded with
`record_period`'s statements in the same transaction. Two writers closing the same period
(the sync and a step seeing `exited` at once) insert one row: periods are unique per
(instance, start) and a repeat is ignored; the row's totals are then summed from the periods,
so they are right whoever committed first.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update

from novita_manager.domain import costs
from novita_manager.domain.statuses import Operation
from novita_manager.store.dialects import insert_for
from novita_manager.store.models import BillingPeriod, Instance


def billing_lower(row: Any) -> datetime | None:
    """The last moment the previous upstream status is known to have held: the last
    observation, or the request or call of the operation under way, whichever is latest."""
    return costs.latest(
        getattr(row, "observed_at", None),
        getattr(row, "operation_issued_at", None),
        getattr(row, "operation_started_at", None),
    )


def carry(row: Any, observation: dict[str, Any], seen_at: datetime) -> tuple[dict[str, Any], Any]:
    """`costs.carry_billing` for a row (`observation` the merged new one)."""
    rate = costs.billing_rate(row.price_per_hour, row.rootfs_size)
    deleting = row.operation == Operation.DELETE.value and row.operation_issued
    return costs.carry_billing(
        row.observation,
        observation,
        lower=billing_lower(row),
        seen_at=seen_at,
        rate=rate,
        removal_accepted_at=row.operation_issued_at if deleting else None,
    )


def record_period(dialect: str, instance_id: str, period: costs.Period) -> list[Any]:
    """Statements recording a closed period and the row's totals (idempotent)."""
    assert period.ended_at is not None
    values = {
        "instance_id": instance_id,
        "started_at": period.started_at,
        "ended_at": period.ended_at,
        "rate": period.rate,
        "seconds": period.seconds(period.ended_at),
        "cost": period.cost(period.ended_at),
    }
    insert = insert_for(dialect)(BillingPeriod)
    add = insert.values(**values).on_conflict_do_nothing(
        index_elements=["instance_id", "started_at"]
    )
    mine = BillingPeriod.instance_id == instance_id
    totals = (
        update(Instance)
        .where(Instance.id == instance_id)
        .values(
            billed_seconds=select(func.coalesce(func.sum(BillingPeriod.seconds), 0.0))
            .where(mine)
            .scalar_subquery(),
            billed_cost=select(func.coalesce(func.sum(BillingPeriod.cost), 0.0))
            .where(mine)
            .scalar_subquery(),
        )
        .execution_options(synchronize_session=False)
    )
    return [add, totals]


def close_open(dialect: str, row: Any, at: datetime) -> list[Any]:
    """Statements closing the row's open period at `at` (an instance we just removed), if any."""
    since, rate = costs.open_period(row.observation)
    if since is None:
        return []
    return record_period(dialect, row.id, costs.Period(since, max(at, since), rate or 0.0))
