"""The rows a provisioning step adds or changes beside its own row, in the same transaction:
the history entry, the webhook delivery (the outbox) and the outcome of operation requests."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import update

from novita_manager.domain.requests import FINAL_STATES, RequestState
from novita_manager.domain.statuses import DeliveryStatus, Event, Status
from novita_manager.engine.group_commit import NewRow
from novita_manager.engine.retry import truncate_error
from novita_manager.store.models import Instance, InstanceEvent, OperationRequest, WebhookDelivery


def history(row: Instance, status: Status, reason: str | None, at: datetime) -> NewRow:
    return NewRow(
        InstanceEvent,
        {
            "instance_id": row.id,
            "at": at,
            "from_status": row.status,
            "to_status": status.value,
            "novita_status": row.novita_status,
            "reason": reason,
        },
    )


def delivery(row: Instance, event: Event, payload: dict[str, Any], now: datetime) -> NewRow:
    url = row.webhook_url
    return NewRow(
        WebhookDelivery,
        {
            "id": f"msg_{uuid.uuid4().hex}",
            "instance_id": row.id,
            "event_type": event.value,
            "url": url,
            "payload": payload,
            "status": (DeliveryStatus.PENDING if url else DeliveryStatus.SKIPPED).value,
            "created_at": now,
            "next_attempt_at": now if url else None,
            "attempts": 0,
        },
    )


def final_outcome(state: str | None, reason: str | None) -> tuple[RequestState, str | None] | None:
    """The outcome of a joined request if it is final (else the joiner waits its turn)."""
    if state is None or RequestState(state) not in FINAL_STATES:
        return None
    return RequestState(state), reason


def resolve_in_progress(
    instance_id: str, state: RequestState, reason: str | None, at: datetime
) -> Any:
    """Give every request the operation under way serves its outcome."""
    return (
        update(OperationRequest)
        .where(
            OperationRequest.instance_id == instance_id,
            OperationRequest.state == RequestState.IN_PROGRESS.value,
        )
        .values(state=state.value, reason=reason and truncate_error(reason), resolved_at=at)
    )
