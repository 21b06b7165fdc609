"""Reaching a status: the row, its history entry, its webhook (the outbox row) and the outcome
of the requests the operation served commit in one transaction. Also failing and waiting."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import case

from novita_manager.domain import observations
from novita_manager.domain.lifecycle import Decision
from novita_manager.domain.payloads import webhook_payload
from novita_manager.domain.requests import RequestState, outcome_of
from novita_manager.domain.statuses import NOVITA_RUNNING, Event, Operation, Status
from novita_manager.engine.leases import Lease
from novita_manager.engine.provisioning.context import StepContext
from novita_manager.engine.provisioning.records import delivery, history, resolve_in_progress
from novita_manager.engine.provisioning.write import apply, retry, write
from novita_manager.engine.retry import truncate_error
from novita_manager.logging import get_logger
from novita_manager.novita.errors import NovitaError, NovitaNotFound, is_transient
from novita_manager.store.models import Instance
from novita_manager.store.types import utcnow
from novita_manager.store.views import instance_view

log = get_logger(__name__)

# The timestamp column each status sets when it is reached.
_REACHED_AT = {
    Status.RUNNING: "ready_at",
    Status.FAILED: "failed_at",
    Status.STOPPED: "stopped_at",
    Status.DELETED: "deleted_at",
}


async def transition(ctx: StepContext, lease: Lease, row: Instance, decision: Decision) -> None:
    assert decision.to_status is not None
    if decision.to_status is Status.FAILED:
        await fail(ctx, lease, row, decision.reason or "failed")
        return
    extra: dict[str, Any] | None = None
    if decision.to_status is Status.RUNNING and row.novita_instance_id is not None:
        extra = await details(ctx, lease, row)
        if extra is None:
            return
    await finish(ctx, lease, row, decision.to_status, decision.event, decision.reason, extra)


async def details(ctx: StepContext, lease: Lease, row: Instance) -> dict[str, Any] | None:
    """Connection details from one GET of an instance that reached running.

    List items may lack endpoints and connectComponent* (readings `list_shape`), so the
    running webhook and the view take them from the instance itself. Returns the values to
    write with the transition, or None when the step ended otherwise (the GET failed, or
    showed the instance no longer running: then that observation is written and the row
    decides again at once).
    """
    assert row.novita_instance_id is not None
    now = utcnow()
    try:
        instance = await ctx.client.get_instance(row.novita_instance_id)
    except NovitaNotFound:
        observation = observations.gone()
    except NovitaError as error:
        if not is_transient(error):
            raise
        await retry(ctx, lease, row, error)
        return None
    else:
        observation = observations.merge(row.observation, observations.summarize(instance), now)
    values: dict[str, Any] = {
        "observation": observation,
        "observed_at": now,
        "novita_status": observation.get("status"),
        "port_mappings": observation.get("portMappings", []),
        "connection_details": observation.get("connectionDetails", {}),
        "cluster_id": observation.get("clusterId") or row.cluster_id,
    }
    if observation.get("status") != NOVITA_RUNNING or observation.get("gone"):
        await write(ctx, lease, row, {**values, "next_attempt_at": now}, release=True)
        return None
    return values


async def fail(
    ctx: StepContext,
    lease: Lease,
    row: Instance,
    reason: str,
    extra: dict[str, Any] | None = None,
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
    extra: dict[str, Any] | None = None,
) -> None:
    """Reach a resting status: history, webhook and the row change in one transaction."""
    now = utcnow()
    values: dict[str, Any] = {
        "status": status.value,
        "operation": None,
        "operation_issued": False,
        "operation_issued_at": None,
        "next_attempt_at": None,
        "attempts": 0,
        "updated_at": now,
        _REACHED_AT[status]: now,
        **(extra or {}),
    }
    error = None
    if status is Status.FAILED:
        values["failure_reason"] = error = truncate_error(reason or "failed")
    elif status is Status.RUNNING:
        values["last_error"] = None
        values["failure_reason"] = None
    also: list[Any] = [history(row, status, reason, now)]
    statements: list[Any] = []
    if row.operation is not None and row.operation != Operation.CREATE.value:
        outcome = outcome_of(Operation(row.operation), status)
        why = None if outcome is RequestState.SUCCEEDED else (reason or status.value)
        statements.append(resolve_in_progress(row.id, outcome, why, now))
    if event is not None:
        after = apply(row, values)
        payload = webhook_payload(
            event.value,
            instance_view(after, stale=False),
            now=now,
            created_at=row.created_at,
            error=error,
        )
        also.append(delivery(row, event, payload, now))
        if not row.webhook_url:
            log.info("webhook_skipped_no_url", event_type=event.value)
    if await write(ctx, lease, row, values, release=True, also=also, statements=statements):
        log.info("instance_status", status=status.value, reason=reason)
        if event is not None:
            ctx.on_outbox()


async def wait(ctx: StepContext, lease: Lease, row: Instance, seconds: float) -> None:
    """Sleep until the next observation or the deadline; wake at once if one arrived."""
    now = utcnow()
    later = now + timedelta(seconds=max(seconds, 0.0))
    seen = row.observed_at
    newer = Instance.observed_at.is_not(None) if seen is None else Instance.observed_at > seen
    await write(ctx, lease, row, {"next_attempt_at": case((newer, now), else_=later)}, release=True)
