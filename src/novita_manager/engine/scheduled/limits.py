"""The limits task: autoStopAfter, autoDeleteAfter, maxCost and idleStopAfter fire through the
normal operation path, warned ahead by `instance.expiring`.

Every run (each `INSTANCE_POLL_INTERVAL`, under its own service lease, so one replica runs it):
1. For running instances with `idleStopAfter`, read Novita's GPU utilisation
   (`/metrics/gpu/instance`, one call per such instance) and record since when it has been idle
   (`idle_since`); no reading, no idle stop.
2. For every instance with a limit, take the next one due (domain/limits.py). When it is due, an
   operation request (stop or delete) with the limit as its `cause` is appended in one
   transaction, exactly as the API appends a user's, and the provisioning pipeline carries it
   out: its history reads "stop requested (#n) by auto-stop", the outcome "stopped (reason:
   auto-stop)", and `instance.stopped` carries `reason: "auto-stop"`.
3. When a limit is due within `EXPIRY_WARNING_LEAD`, `instance.expiring` (with `action`, `at`
   and `reason`) is written to the outbox once for it.

Never for an instance the user stopped or deleted meanwhile: the append re-reads the row and the
open requests in its transaction and gives up when the instance is no longer at rest where the
limit applies (a stop: running with no request open; a delete: no delete asked for). Once: the
limit's marker is stored with the request (`limit_fired`), so a second replica or a restart
sees it fired; a stop fires once per running period.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert, or_, select, update

from novita_manager.domain.limits import DELETABLE, Due, idle_start, next_due
from novita_manager.domain.payloads import iso, webhook_payload
from novita_manager.domain.requests import RequestState
from novita_manager.domain.statuses import Event, Operation, Status
from novita_manager.engine.provisioning.records import delivery
from novita_manager.engine.scheduled.runner import ScheduledTask
from novita_manager.logging import get_logger
from novita_manager.novita.client import NovitaClient
from novita_manager.novita.errors import NovitaError
from novita_manager.store.costs_view import limit_state
from novita_manager.store.db import Database
from novita_manager.store.models import Instance, OperationRequest
from novita_manager.store.types import utcnow
from novita_manager.store.views import instance_json, view_columns

log = get_logger(__name__)

LIMITS_TASK = "limits"
WATCHED = tuple(DELETABLE)  # every status a limit may apply in
OPEN = (RequestState.PENDING.value, RequestState.IN_PROGRESS.value)


@dataclass(frozen=True)
class LimitOptions:
    interval: float  # seconds between runs
    warning_lead: float  # seconds; 0: no warnings
    idle_threshold: float  # percent


class _GiveUp(Exception):
    """Roll the append back: the instance is no longer where the limit applies."""


class LimitsTask:
    def __init__(
        self,
        db: Database,
        client: NovitaClient,
        options: LimitOptions,
        *,
        on_request: Any = lambda: None,
        on_outbox: Any = lambda: None,
    ) -> None:
        self.db = db
        self.client = client
        self.options = options
        self.on_request = on_request  # wakes the provisioning pipeline
        self.on_outbox = on_outbox  # wakes the webhook delivery

    async def run_once(self) -> int:
        """One pass over the instances with limits; returns how many limits fired."""
        now = utcnow()
        async with self.db.read_session() as session:
            rows = (
                (
                    await session.execute(
                        select(Instance).where(
                            Instance.status.in_([s.value for s in WATCHED]),
                            or_(
                                Instance.auto_stop_after.is_not(None),
                                Instance.auto_delete_after.is_not(None),
                                Instance.idle_stop_after.is_not(None),
                                Instance.max_cost.is_not(None),
                            ),
                        )
                    )
                )
                .scalars()
                .all()
            )
        fired = 0
        for row in rows:
            if row.idle_stop_after is not None:
                await self._read_idle(row, now)
            due = next_due(limit_state(view_columns(row)), row.limit_fired)
            if due is None:
                continue
            if due.at <= now:
                fired += await self._fire(row, due, now)
            elif (
                self.options.warning_lead > 0
                and due.at - timedelta(seconds=self.options.warning_lead) <= now
                and row.expiry_warned != due.marker
            ):
                await self._warn(row, due, now)
        return fired

    async def _read_idle(self, row: Instance, now: datetime) -> None:
        """Record since when a running instance has been idle (None: busy or unknown)."""
        if row.status != Status.RUNNING.value or row.ready_at is None:
            return
        if row.novita_instance_id is None or row.operation is not None:
            return
        window = timedelta(seconds=max(3 * self.options.interval, 300.0))
        start = max(row.ready_at, now - window)
        try:
            points = await self.client.gpu_utilization(row.novita_instance_id, start, now)
        except NovitaError as error:
            log.info("gpu_metrics_unavailable", instance_id=row.id, error=str(error))
            return
        threshold = self.options.idle_threshold
        idle = idle_start(points, threshold)
        since = None
        if idle is not None:
            whole_window = bool(points) and min(at for at, _ in points) >= idle
            since = row.idle_since if (whole_window and row.idle_since) else idle
            since = max(since, row.ready_at)
        utilization = points[-1][1] if points else None
        if since == row.idle_since and utilization == row.gpu_utilization:
            return
        async with self.db.session() as session, session.begin():
            await session.execute(
                update(Instance)
                .where(Instance.id == row.id)
                .values(idle_since=since, gpu_utilization=utilization)
                .execution_options(synchronize_session=False)
            )
        row.idle_since, row.gpu_utilization = since, utilization

    async def _fire(self, row: Instance, due: Due, now: datetime) -> int:
        """Append the limit's operation request, unless the instance moved on meanwhile."""
        operation = due.operation
        statuses = (Status.RUNNING,) if operation is Operation.STOP else WATCHED
        allowed = [status.value for status in statuses]
        not_fired = or_(Instance.limit_fired.is_(None), Instance.limit_fired != due.marker)
        try:
            async with self.db.session() as session, session.begin():
                bumped = (
                    await session.execute(
                        update(Instance)
                        .where(Instance.id == row.id, Instance.status.in_(allowed), not_fired)
                        .values(
                            request_seq=Instance.request_seq + 1,
                            next_attempt_at=now,
                            updated_at=now,
                            limit_fired=due.marker,
                        )
                        .returning(Instance.request_seq, Instance.operation)
                        .execution_options(synchronize_session=False)
                    )
                ).one_or_none()
                if bumped is None:
                    raise _GiveUp
                seq, under_way = bumped
                open_ops = (
                    (
                        await session.execute(
                            select(OperationRequest.operation).where(
                                OperationRequest.instance_id == row.id,
                                OperationRequest.state.in_(OPEN),
                            )
                        )
                    )
                    .scalars()
                    .all()
                )
                if operation is Operation.STOP and (open_ops or under_way is not None):
                    raise _GiveUp  # the user asked for something meanwhile: theirs wins
                if operation is Operation.DELETE and (
                    Operation.DELETE.value in open_ops or under_way == Operation.DELETE.value
                ):
                    raise _GiveUp
                session.add(
                    OperationRequest(
                        instance_id=row.id,
                        seq=seq,
                        operation=operation.value,
                        state=RequestState.PENDING.value,
                        cause=due.cause.value,
                        requested_at=now,
                    )
                )
        except _GiveUp:
            return 0
        log.info(
            "limit_fired",
            instance_id=row.id,
            cause=due.cause.value,
            operation=operation.value,
            due_at=iso(due.at),
            seq=seq,
        )
        self.on_request()
        return 1

    async def _warn(self, row: Instance, due: Due, now: datetime) -> None:
        """`instance.expiring` once per limit, written to the outbox with the marker."""
        payload = webhook_payload(
            Event.EXPIRING.value,
            instance_json(row, stale=False),
            now=now,
            created_at=row.created_at,
        )
        payload["data"].update(
            {"action": due.operation.value, "at": iso(due.at), "reason": due.cause.value}
        )
        async with self.db.session() as session, session.begin():
            marked = await session.execute(
                update(Instance)
                .where(
                    Instance.id == row.id,
                    or_(Instance.expiry_warned.is_(None), Instance.expiry_warned != due.marker),
                )
                .values(expiry_warned=due.marker)
                .execution_options(synchronize_session=False)
            )
            if not marked.rowcount:  # type: ignore[attr-defined]
                return
            outbox = delivery(row, Event.EXPIRING, payload, now)
            await session.execute(insert(outbox.model), [outbox.values])
        log.info("limit_expiring", instance_id=row.id, cause=due.cause.value, at=iso(due.at))
        self.on_outbox()


def limits_task(task: LimitsTask) -> ScheduledTask:
    return ScheduledTask(LIMITS_TASK, task.options.interval, task.run_once)
