"""Taking up the operation requests the API accepted (rules in `domain/requests.py`)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, select, update
from sqlalchemy.orm import aliased

from novita_manager.domain.limits import Cause
from novita_manager.domain.requests import Pending, RequestState, plan_requests
from novita_manager.domain.statuses import OPERATION_STATUS, Operation, Status
from novita_manager.engine.changes import InstanceChange
from novita_manager.engine.leases import Lease
from novita_manager.engine.provisioning.context import StepContext
from novita_manager.engine.provisioning.records import final_outcome, history, resolve_in_progress
from novita_manager.engine.provisioning.write import write
from novita_manager.logging import get_logger
from novita_manager.store.models import Instance, OperationRequest
from novita_manager.store.types import utcnow

log = get_logger(__name__)


async def take_requests(ctx: StepContext, lease: Lease, row: Instance) -> bool:
    """Resolve or take up the requests the API accepted, in order (domain.requests).

    Only requests read here are resolved, by seq, and `consumed_seq` moves past exactly
    those, so a request accepted meanwhile stays pending and wakes the row again. Returns
    whether the step goes on (False: the lease was lost).
    """
    joined = aliased(OperationRequest)
    async with ctx.db.read_session() as session:
        pending = (
            await session.execute(
                select(
                    OperationRequest.seq,
                    OperationRequest.operation,
                    OperationRequest.webhook_url,
                    OperationRequest.joins_seq,
                    joined.state,
                    joined.reason,
                    OperationRequest.cause,
                )
                .outerjoin(
                    joined,
                    and_(
                        joined.instance_id == OperationRequest.instance_id,
                        joined.seq == OperationRequest.joins_seq,
                    ),
                )
                .where(
                    OperationRequest.instance_id == row.id,
                    OperationRequest.seq > row.consumed_seq,
                    OperationRequest.state == RequestState.PENDING.value,
                )
                .order_by(OperationRequest.seq)
            )
        ).all()
    if not pending:  # e.g. a refusal rolled back after the bump was read
        return await write(
            ctx, lease, row, InstanceChange(consumed_seq=row.request_seq), release=False
        )
    under_way = Operation(row.operation) if row.operation else None
    plan = plan_requests(
        Status(row.status),
        under_way,
        row.novita_instance_id is not None,
        [
            Pending(seq, Operation(operation), final_outcome(joined_state, reason), joins_seq)
            for seq, operation, _, joins_seq, joined_state, reason, _ in pending
        ],
        row.consumed_seq,
    )
    now = utcnow()
    change = InstanceChange(consumed_seq=plan.consumed_seq)
    statements: list[Any] = []
    if plan.supersede_under_way is not None:
        statements.append(
            resolve_in_progress(row.id, RequestState.SUPERSEDED, plan.supersede_under_way, now)
        )
    for seq, (state, reason) in plan.outcomes.items():
        resolved = None if state is RequestState.IN_PROGRESS else now
        statements.append(
            update(OperationRequest)
            .where(OperationRequest.instance_id == row.id, OperationRequest.seq == seq)
            .values(state=state.value, reason=reason, resolved_at=resolved)
        )
        if state is not RequestState.IN_PROGRESS:
            log.info("request_resolved", seq=seq, state=state.value, reason=reason)
    causes = {request[0]: request[6] for request in pending}
    for seq, _, webhook_url, _, _, _, _ in pending:
        taken = plan.outcomes.get(seq, (None, None))[0] is RequestState.IN_PROGRESS
        if taken and webhook_url:
            change = change.merged(InstanceChange(webhook_url=webhook_url))
    also: list[Any] = []
    if plan.adopt is not None:
        operation = plan.adopt.operation
        status = OPERATION_STATUS[operation]
        change = change.merged(
            InstanceChange(
                operation=operation,
                operation_started_at=now,
                operation_issued=False,
                operation_issued_at=None,
                status=status,
                failure_reason=None,
                attempts=0,
                last_error=None,
                recovery=None,  # a user's operation ends a recovery under way
                replaces_novita_id=None,
            )
        )
        if operation is Operation.START:
            change = change.merged(InstanceChange(started_at=now))
        cause = causes.get(plan.adopt.seq) or Cause.USER.value
        change = change.merged(InstanceChange(operation_cause=cause))
        by = "" if cause == Cause.USER.value else f" by {cause}"
        reason = f"{operation.value} requested (#{plan.adopt.seq}){by}"
        also.append(history(row, status, reason, now))
    return await write(ctx, lease, row, change, release=False, also=also, statements=statements)
