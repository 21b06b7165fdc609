"""The guarded write of a provisioning step, and the retry of a step that failed transiently."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import case

from novita_manager.backoff import backoff_delay
from novita_manager.engine.leases import Lease, LeaseLost, write_with_lease
from novita_manager.engine.provisioning.context import StepContext
from novita_manager.engine.retry import truncate_error
from novita_manager.logging import get_logger
from novita_manager.store.models import Instance
from novita_manager.store.types import utcnow

log = get_logger(__name__)


class IncompleteListing(Exception):
    """Novita's listing could not be proved complete, so absence proves nothing (a retry)."""


async def write(
    ctx: StepContext,
    lease: Lease,
    row: Instance,
    values: dict[str, Any],
    *,
    release: bool,
    also: list[Any] | None = None,
    statements: list[Any] | None = None,
) -> bool:
    """Write under the lease with `also` (rows to add) and `statements` in the same
    transaction; mirror the values on `row`.

    A release never puts a row to sleep past a request accepted meanwhile: its
    `next_attempt_at` becomes now when `request_seq` (read by the UPDATE itself, so also on
    PostgreSQL after waiting for the API's row lock) is past what this worker consumed.
    """
    now = utcnow()
    values.setdefault("updated_at", now)
    sql_values = dict(values)
    if release and "next_attempt_at" in values:
        consumed = values.get("consumed_seq", row.consumed_seq)
        sql_values["next_attempt_at"] = case(
            (Instance.request_seq > consumed, now), else_=values["next_attempt_at"]
        )
    try:
        async with ctx.db.session() as session, session.begin():
            held = await write_with_lease(session, Instance, lease, sql_values, release=release)
            if not held:
                raise LeaseLost
            session.add_all(also or [])
            for statement in statements or []:
                await session.execute(statement)
    except LeaseLost:
        log.warning("lease_lost_result_dropped")
        return False
    for key, value in values.items():
        if not is_sql(value):
            setattr(row, key, value)
    return True


def is_sql(value: Any) -> bool:
    return hasattr(value, "compile")


def apply(row: Instance, values: dict[str, Any]) -> Instance:
    """A detached copy of `row` with `values` applied, for building the webhook's view."""
    copy = Instance(**{column.key: getattr(row, column.key) for column in Instance.__table__.c})
    for key, value in values.items():
        if not is_sql(value):
            setattr(copy, key, value)
    return copy


async def retry(
    ctx: StepContext,
    lease: Lease,
    row: Instance,
    error: BaseException,
    extra: dict[str, Any] | None = None,
) -> None:
    delay = backoff_delay(row.attempts, ctx.settings.retry_backoff_base or 0.1, 60.0)
    retry_after = getattr(error, "retry_after", None)
    if isinstance(retry_after, int | float):
        delay = max(delay, float(retry_after))
    values = {
        "attempts": row.attempts + 1,
        "last_error": truncate_error(str(error)),
        "next_attempt_at": utcnow() + timedelta(seconds=delay),
        **(extra or {}),
    }
    log.info("step_retry", error=str(error), delay=round(delay, 3))
    await write(ctx, lease, row, values, release=True)
