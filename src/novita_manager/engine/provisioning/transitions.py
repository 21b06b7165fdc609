"""Reaching a status: the row, its history entry, its webhook (the outbox row) and the outcome
of the requests the operation served commit in one transaction. Also failing and waiting."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from novita_manager.domain import observations
from novita_manager.domain.lifecycle import Decision
from novita_manager.domain.limits import stop_reason
from novita_manager.domain.payloads import webhook_payload
from novita_manager.domain.requests import RequestState, outcome_of
from novita_manager.domain.statuses import NOVITA_RUNNING, Event, Operation, Status
from novita_manager.engine import billing
from novita_manager.engine.changes import InstanceChange, observed
from novita_manager.engine.leases import Lease
from novita_manager.engine.provisioning.context import StepContext
from novita_manager.engine.provisioning.records import delivery, history, resolve_in_progress
from novita_manager.engine.provisioning.write import retry, write
from novita_manager.engine.retry import truncate_error
from novita_manager.logging import get_logger
from novita_manager.novita.errors import NovitaError, NovitaNotFound, is_transient
from novita_manager.store.models import Instance
from novita_manager.store.types import utcnow
from novita_manager.store.views import instance_json

log = get_logger(__name__)


def reached_at(status: Status, at: datetime) -> InstanceChange:
    """The timestamp column a resting status sets when it is reached."""
    if status is Status.RUNNING:
        return InstanceChange(ready_at=at)
    if status is Status.FAILED:
        return InstanceChange(failed_at=at)
    if status is Status.STOPPED:
        return InstanceChange(stopped_at=at)
    if status is Status.DELETED:
        return InstanceChange(deleted_at=at)
    raise ValueError(f"{status.value} is not a resting status")


async def transition(ctx: StepContext, lease: Lease, row: Instance, decision: Decision) -> None:
    assert decision.to_status is not None
    if decision.to_status is Status.FAILED:
        await fail(ctx, lease, row, decision.reason or "failed")
        return
    extra: InstanceChange | None = None
    if decision.to_status is Status.RUNNING and row.novita_instance_id is not None:
        extra = await details(ctx, lease, row)
        if extra is None:
            return
    await finish(ctx, lease, row, decision.to_status, decision.event, decision.reason, extra)


async def details(ctx: StepContext, lease: Lease, row: Instance) -> InstanceChange | None:
    """Connection details from one GET of an instance that reached running.

    List items may lack endpoints and connectComponent* (readings `list_shape`), so the
    running webhook and the view take them from the instance itself. Returns the change to
    write with the transition, or None when the step ended otherwise (the GET failed, or
    showed the instance no longer running: then that observation is written and the row
    decides again at once).
    """
    assert row.novita_instance_id is not None
    now = utcnow()
    try:
        instance = await ctx.client.get_listed_instance(row.novita_instance_id, urgent=True)
    except NovitaNotFound:
        observation = observations.gone()
    except NovitaError as error:
        if not is_transient(error):
            raise
        await retry(ctx, lease, row, error)
        return None
    else:
        observation = observations.merge(row.observation, observations.summarize(instance), now)
    observation, closed = billing.carry(row, observation, now)
    change = observed(observation, now, row.cluster_id)
    if observation.get("status") != NOVITA_RUNNING or observation.get("gone"):
        periods = [] if closed is None else billing.record_period(ctx.db.dialect, row.id, closed)
        change = change.merged(InstanceChange(next_attempt_at=now))
        await write(ctx, lease, row, change, release=True, statements=periods)
        return None
    return change


async def fail(
    ctx: StepContext,
    lease: Lease,
    row: Instance,
    reason: str,
    extra: InstanceChange | None = None,
) -> None:
    log.warning("instance_failed", reason=reason)
    await finish(ctx, lease, row, Status.FAILED, Event.FAILED, reason, extra)


async def finish(
    ctx: StepContext,
    lease: Lease,
    row: Instance,
    status: Status,
    event: Event | None,
    reason: str | None,
    extra: InstanceChange | None = None,
    *,
    preceding: list[Any] | None = None,
) -> None:
    """Reach a resting status: history, webhook and the row change in one transaction.
    `preceding`: rows written before them (e.g. the reclaim events before instance.stopped)."""
    now = utcnow()
    change = (
        InstanceChange(
            status=status,
            operation=None,
            operation_issued=False,
            operation_issued_at=None,
            next_attempt_at=None,
            attempts=0,
            updated_at=now,
            recovery=None,  # a recovery ends at any resting status (engine/.../recover.py)
            replaces_novita_id=None,
        )
        .merged(reached_at(status, now))
        .merged(extra)
    )
    error = None
    if status is Status.FAILED:
        error = truncate_error(reason or "failed")
        change = change.merged(InstanceChange(failure_reason=error))
    elif status is Status.RUNNING:
        change = change.merged(
            InstanceChange(last_error=None, failure_reason=None, reclaim_at=None)
        )
    cause = None
    if event in (Event.STOPPED, Event.DELETED):
        op = Operation(row.operation) if row.operation else None
        cause = stop_reason(op, row.operation_cause)
        reason = f"{reason or status.value} (reason: {cause.value})"
    also: list[Any] = [*(preceding or []), history(row, status, reason, now)]
    statements: list[Any] = []
    if row.operation is not None and row.operation != Operation.CREATE.value:
        outcome = outcome_of(Operation(row.operation), status)
        why = None if outcome is RequestState.SUCCEEDED else (reason or status.value)
        statements.append(resolve_in_progress(row.id, outcome, why, now))
    if event is not None:
        payload = webhook_payload(
            event.value,
            instance_json(row, stale=False, changed=change.columns()),
            now=now,
            created_at=row.created_at,
            error=error,
        )
        if cause is not None:
            payload["data"]["reason"] = cause.value
        also.append(delivery(row, event, payload, now))
        if not row.webhook_url:
            log.info("webhook_skipped_no_url", event_type=event.value)
    if await write(ctx, lease, row, change, release=True, also=also, statements=statements):
        log.info("instance_status", status=status.value, reason=reason)
        if event is not None:
            ctx.on_outbox()


async def wait(ctx: StepContext, lease: Lease, row: Instance, seconds: float) -> None:
    """Sleep until the next observation or the deadline; wake at once if one arrived."""
    now = utcnow()
    later = now + timedelta(seconds=max(seconds, 0.0))
    change = InstanceChange(next_attempt_at=later, sooner_if_observed_after=row.observed_at)
    await write(ctx, lease, row, change, release=True)
