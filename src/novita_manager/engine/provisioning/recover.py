"""Spot life steps: warn of a reclaim, apply the onReclaim policy when it is taken, retire the
reclaimed instance of a recreate, and fail a restart or migrate over to a recreate when its
cluster has no capacity (the pure rules: domain/recovery.py).

A recovery is an operation the pipeline gives itself, written under the lease like every step:
`restart` and `migrate` are a start (`calls.call` sends Novita's migrate for `migrate`, and
migrates a restart Novita refuses for capacity), `recreate` is a create that first retires the
reclaimed instance. So a recovery goes through the same steps, deadlines and guards as a user's
start or a first create: the create's exactly-once bookkeeping (`create_state`, the marker
search) covers a crash in the middle, and the reclaimed instance is deleted (Novita shows it
`toRemove` at once) before the new one is created, so one managed instance never has two live
Novita instances. User requests still apply: a stop or delete accepted meanwhile supersedes the
recovery (domain/requests.py).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from novita_manager.config import Settings
from novita_manager.domain.payloads import iso, webhook_payload
from novita_manager.domain.recovery import (
    OnReclaim,
    RecoveryPolicy,
    Verdict,
    plan_recovery,
    spot_signal,
)
from novita_manager.domain.statuses import CreateState, Event, Operation, Status
from novita_manager.engine import billing
from novita_manager.engine.changes import InstanceChange
from novita_manager.engine.leases import Lease
from novita_manager.engine.provisioning.context import StepContext
from novita_manager.engine.provisioning.records import delivery, history
from novita_manager.engine.provisioning.transitions import fail, finish
from novita_manager.engine.provisioning.write import retry, write
from novita_manager.engine.retry import truncate_error
from novita_manager.logging import get_logger
from novita_manager.novita.errors import (
    NovitaError,
    NovitaInvalidStateChange,
    NovitaNotFound,
    is_transient,
)
from novita_manager.store.models import Instance
from novita_manager.store.types import utcnow
from novita_manager.store.views import instance_json

log = get_logger(__name__)


def policy_of(row: Instance, settings: Settings) -> RecoveryPolicy:
    try:
        mode = OnReclaim(row.on_reclaim or OnReclaim.NONE.value)
    except ValueError:
        mode = OnReclaim.NONE
    return RecoveryPolicy(
        mode, row.max_recoveries, settings.recovery_backoff, settings.recovery_backoff_max
    )


def _events(row: Instance, change: InstanceChange, events: list[Event], now: datetime) -> list[Any]:
    """Outbox rows of `events`, in order (each a microsecond before the next: deliveries of one
    instance go out by `created_at`), carrying `reclaimAt` beside the instance view."""
    view = instance_json(row, stale=False, changed=change.columns())
    rows = []
    for offset, event in enumerate(events):
        at = now - timedelta(microseconds=len(events) - offset)
        payload = webhook_payload(event.value, view, now=at, created_at=row.created_at)
        payload["data"]["reclaimAt"] = view["reclaimAt"]
        rows.append(delivery(row, event, payload, at))
    return rows


async def note_reclaim(ctx: StepContext, lease: Lease, row: Instance) -> None:
    """Novita announced a reclaim: `instance.reclaiming` with the reclaim time, once."""
    now = utcnow()
    signal = spot_signal(row.observation)
    at = signal.reclaim_at or now
    change = InstanceChange(spot_status=signal.spot_status, reclaim_at=at, next_attempt_at=None)
    also = [
        *_events(row, change, [Event.RECLAIMING], now),
        history(row, Status(row.status), f"spot reclaim announced for {iso(at)}", now),
    ]
    log.info("spot_reclaim_announced", reclaim_at=iso(at))
    if await write(ctx, lease, row, change, release=True, also=also):
        ctx.on_outbox()


async def reclaimed(ctx: StepContext, lease: Lease, row: Instance) -> None:
    """The instance was taken: `instance.reclaimed` (after `instance.reclaiming` if the notice
    was never seen), then the policy: rest stopped, give up (failed), or start a recovery."""
    now = utcnow()
    signal = spot_signal(row.observation)
    at = row.reclaim_at or signal.reclaim_at or now
    plan = plan_recovery(policy_of(row, ctx.settings), row.recoveries, row.last_recovery_at, now)
    events = ([] if row.reclaim_at is not None else [Event.RECLAIMING]) + [Event.RECLAIMED]
    base = InstanceChange(spot_status=signal.spot_status or "terminated", reclaim_at=at)
    log.info("spot_reclaimed", verdict=plan.verdict.value, recoveries=row.recoveries)
    if plan.verdict is not Verdict.RECOVER:
        status = Status.STOPPED if plan.verdict is Verdict.REST else Status.FAILED
        shown = base.merged(InstanceChange(status=status))
        preceding = _events(row, shown, events, now)
        event = Event.STOPPED if status is Status.STOPPED else Event.FAILED
        await finish(ctx, lease, row, status, event, plan.reason, base, preceding=preceding)
        return
    assert plan.mode is not None
    recreate = plan.mode is OnReclaim.RECREATE
    status = Status.CREATING if recreate else Status.STARTING
    start = max(plan.not_before or now, now)
    change = base.merged(
        InstanceChange(
            status=status,
            operation=Operation.CREATE if recreate else Operation.START,
            operation_started_at=start,
            operation_issued=False,
            operation_issued_at=None,
            started_at=start,
            recovery=plan.mode.value,
            recoveries=row.recoveries + 1,
            last_recovery_at=start,
            replaces_novita_id=row.novita_instance_id if recreate else None,
            failure_reason=None,
            attempts=0,
            last_error=None,
            next_attempt_at=start,
        )
    )
    reason = plan.reason if start <= now else f"{plan.reason}, from {iso(start)} (backoff)"
    also = [*_events(row, change, events, now), history(row, status, reason, now)]
    if await write(ctx, lease, row, change, release=True, also=also):
        ctx.on_outbox()


async def retire(ctx: StepContext, lease: Lease, row: Instance) -> None:
    """A recreate: delete the reclaimed instance, then the create step makes the new one.

    The delete is sent again after a crash before it was recorded (a repeat or a 404 is
    "already done"). The new instance is created only once the old one is deleted (Novita shows
    it `toRemove` at once), and the marker search and the stray sweep skip it.
    """
    old = row.novita_instance_id
    assert old is not None
    try:
        await ctx.client.delete_instance(old)
    except (NovitaNotFound, NovitaInvalidStateChange):
        pass
    except NovitaError as error:
        if is_transient(error):
            await retry(ctx, lease, row, error)
        else:
            await fail(ctx, lease, row, f"Novita refused to delete the reclaimed instance: {error}")
        return
    now = utcnow()
    change = InstanceChange(
        novita_instance_id=None,
        create_state=CreateState.PENDING,
        novita_status=None,
        observation=None,
        observed_at=None,
        port_mappings=[],
        connection_details={},
        spot_status=None,
        attempts=0,
        next_attempt_at=now,
        billing_since=None,  # the old instance's billed period ends with its delete
        billing_rate=None,
    )
    reason = f"recreate: deleted the reclaimed Novita instance {old}; creating a new one"
    log.info("reclaimed_instance_retired", old_novita_instance_id=old)
    periods = billing.close_open(ctx.db.dialect, row, now)
    also = [history(row, Status.CREATING, reason, now)]
    if await write(ctx, lease, row, change, release=True, also=also, statements=periods):
        ctx.on_upstream_change()


async def fail_over(ctx: StepContext, lease: Lease, row: Instance, error: NovitaError) -> None:
    """A restart or migrate found no capacity in the cluster: recreate instead, which tries
    the allowed regions (`regions`) under the price cap."""
    now = utcnow()
    change = InstanceChange(
        status=Status.CREATING,
        operation=Operation.CREATE,
        operation_issued=False,
        operation_issued_at=None,
        recovery=OnReclaim.RECREATE.value,
        replaces_novita_id=row.novita_instance_id,
        attempts=0,
        last_error=truncate_error(str(error)),
        next_attempt_at=now,
    )
    reason = (
        f"no capacity to {row.recovery} in {row.cluster_id} ({error.message}): recreating in "
        "the allowed regions"
    )
    log.info("recovery_failing_over_to_recreate", error=str(error))
    await write(
        ctx, lease, row, change, release=True, also=[history(row, Status.CREATING, reason, now)]
    )
