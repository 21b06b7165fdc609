"""Start, stop and delete: each accepted request is a row in the instance's request log."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import select, update

from novita_manager.domain.requests import RequestState, acceptance_refusal
from novita_manager.domain.statuses import OPERATION_STATUS, Operation, Status
from novita_manager.domain.views import OperationResponse
from novita_manager.errors import InstanceNotFound, InvalidState
from novita_manager.logging import current_request_id, get_logger
from novita_manager.services.creation import check_webhook_url
from novita_manager.store.models import Instance, OperationRequest
from novita_manager.store.types import utcnow

if TYPE_CHECKING:
    from novita_manager.services.runtime import Runtime

log = get_logger(__name__)


async def request_operation(
    runtime: Runtime, row: Instance, operation: Operation, webhook_url: str | None
) -> OperationResponse:
    """Append a start, stop or delete to the instance's request log, or refuse it with 409.

    One transaction: bumping `request_seq` locks the instance row (PostgreSQL) or the database
    (SQLite), so the decision sees every request accepted before it and none can slip between
    the check and the insert. Nothing the pipeline writes can overwrite the new row: it only
    resolves requests it has read, by seq (domain/requests.py has the rules).
    """
    check_webhook_url(runtime, webhook_url)
    now = utcnow()
    async with runtime.db.session() as session, session.begin():
        bumped = (
            await session.execute(
                update(Instance)
                .where(Instance.id == row.id)
                .values(request_seq=Instance.request_seq + 1, next_attempt_at=now, updated_at=now)
                .returning(
                    Instance.request_seq,
                    Instance.status,
                    Instance.operation,
                    Instance.novita_instance_id,
                )
                .execution_options(synchronize_session=False)
            )
        ).one_or_none()
        if bumped is None:  # purged meanwhile
            raise InstanceNotFound(f"Instance {row.id!r} not found")
        seq, status, under_way, novita_id = bumped
        open_requests = (
            await session.execute(
                select(OperationRequest.seq, OperationRequest.operation, OperationRequest.state)
                .where(
                    OperationRequest.instance_id == row.id,
                    OperationRequest.state.in_(
                        (RequestState.PENDING.value, RequestState.IN_PROGRESS.value)
                    ),
                )
                .order_by(OperationRequest.seq)
            )
        ).all()
        pending = [Operation(op) for _, op, state in open_requests if state == RequestState.PENDING]
        refusal = acceptance_refusal(
            operation,
            status=Status(status),
            under_way=Operation(under_way) if under_way else None,
            pending=pending,
            has_upstream=novita_id is not None,
        )
        # Asked again: it joins the last open request when that is the same operation.
        last = open_requests[-1] if open_requests else None
        joins = last[0] if last is not None and last[1] == operation.value else None
        if refusal is not None:
            raise InvalidState(refusal, details={"status": status})  # rolls the bump back
        session.add(
            OperationRequest(
                instance_id=row.id,
                seq=seq,
                operation=operation.value,
                state=RequestState.PENDING.value,
                joins_seq=joins,
                webhook_url=webhook_url,
                request_id=current_request_id(),
                requested_at=now,
            )
        )
    runtime.hint_provisioning()
    log.info("operation_requested", instance_id=row.id, operation=operation.value, seq=seq)
    return OperationResponse(
        instanceId=row.id,
        status=OPERATION_STATUS[operation],
        message=f"{operation.value.capitalize()} accepted as request #{seq}; it runs in the "
        "background after the requests accepted before it.",
        requestSeq=seq,
    )
