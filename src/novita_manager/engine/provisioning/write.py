"""The guarded write of a provisioning step, and the retry of a step that failed transiently."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from novita_manager.backoff import backoff_delay
from novita_manager.engine.changes import InstanceChange
from novita_manager.engine.group_commit import Batch
from novita_manager.engine.leases import DueSooner, Lease, write_with_lease
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
    change: InstanceChange,
    *,
    release: bool,
    also: list[Any] | None = None,
    statements: list[Any] | None = None,
) -> bool:
    """Write `change` under the lease with `also` (rows to add) and `statements` in the same
    transaction; mirror the change on `row`. False when the lease was lost (nothing written).
    The transaction may hold other workers' writes too (`engine/group_commit.py`).

    A release never puts a row to sleep past a request accepted meanwhile: its
    `next_attempt_at` becomes now when `request_seq` (read by the UPDATE itself, so also on
    PostgreSQL after waiting for the API's row lock) is past what this worker consumed.
    """
    now = utcnow()
    if not change.sets("updated_at"):
        change = change.merged(InstanceChange(updated_at=now))
    values = change.values(now)
    if release and "next_attempt_at" in values:
        consumed = values.get("consumed_seq", row.consumed_seq)
        later = values["next_attempt_at"]
        sooner = later if isinstance(later, DueSooner) else DueSooner(later, now, ())
        values["next_attempt_at"] = sooner.or_if("request_seq", ">", consumed)

    async def unit(batch: Batch) -> bool:
        if not await write_with_lease(batch.session, Instance, lease, values, release=release):
            return False  # nothing else of this step is written
        batch.insert(*(also or []))
        for statement in statements or []:
            await batch.session.execute(statement)
        return True

    # In a transaction shared with the other workers' writes of the moment (group_commit).
    if not await ctx.commits.run(unit, key=lease.row_id, lease=lease):
        log.warning("lease_lost_result_dropped")
        return False
    change.apply_to(row)
    return True


async def retry(
    ctx: StepContext,
    lease: Lease,
    row: Instance,
    error: BaseException,
    extra: InstanceChange | None = None,
) -> None:
    """Try the step again after a backoff (or the server's Retry-After), counting the attempt."""
    delay = backoff_delay(row.attempts, ctx.settings.retry_backoff_base or 0.1, 60.0)
    retry_after = getattr(error, "retry_after", None)
    if isinstance(retry_after, int | float):
        delay = max(delay, float(retry_after))
    change = InstanceChange(
        attempts=row.attempts + 1,
        last_error=truncate_error(str(error)),
        next_attempt_at=utcnow() + timedelta(seconds=delay),
    ).merged(extra)
    log.info("step_retry", error=str(error), delay=round(delay, 3))
    await write(ctx, lease, row, change, release=True)
