"""The webhook deliveries API (CONTRACT.md "Webhooks"): inspect deliveries, redeliver one.

The use cases (`list_deliveries`, `redeliver`) take the database and settings explicitly so they
are tested without the app; the handlers only fetch the runtime and wake the delivery pipeline.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Body, Depends, Path
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import or_, select

from novita_manager.api.deps import get_runtime
from novita_manager.api.openapi import error_responses
from novita_manager.config import Settings
from novita_manager.domain.payloads import iso
from novita_manager.errors import InstanceNotFound, NotFound, ValidationFailed
from novita_manager.logging import get_logger
from novita_manager.services.runtime import Runtime
from novita_manager.store.db import Database
from novita_manager.store.models import Instance, WebhookAttempt, WebhookDelivery
from novita_manager.store.types import utcnow
from novita_manager.webhooks.ssrf import MAX_URL_LENGTH, WebhookUrlRefused, validate_webhook_url

log = get_logger(__name__)
router = APIRouter(tags=["webhooks"])

DeliveryStatus = Literal["pending", "delivered", "failed", "skipped"]


class AttemptView(BaseModel):
    attemptedAt: str = Field(description="When the attempt started (ISO-8601, UTC).")
    statusCode: int | None = Field(description="The receiver's HTTP status; null without one.")
    error: str | None = Field(
        description="Why the attempt failed (status, timeout, connection error, SSRF refusal)."
    )
    durationMs: float = Field(description="Duration of the attempt in milliseconds.")


class DeliveryView(BaseModel):
    id: str = Field(description="Delivery id, sent as `webhook-id`; the same on every retry.")
    instanceId: str
    eventType: str = Field(description="`instance.running`, `instance.failed`, ...")
    url: str | None = Field(description="Target URL; null when no webhook was configured.")
    status: DeliveryStatus = Field(
        description="`pending` (to be sent or retried), `delivered`, `failed` (not retryable or "
        "retries exhausted) or `skipped` (no URL)."
    )
    attempts: int = Field(description="HTTP attempts made since the delivery was (re)queued.")
    createdAt: str
    deliveredAt: str | None = None
    nextAttemptAt: str | None = Field(
        default=None, description="When the next attempt is due, while pending."
    )
    lastError: str | None = None
    attemptsLog: list[AttemptView] = Field(
        description="Every attempt ever made, oldest first (including before redeliveries)."
    )


class DeliveryList(BaseModel):
    deliveries: list[DeliveryView] = Field(description="Newest first.")


class RedeliverBody(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, strict=True)

    url: str | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_URL_LENGTH,
        description="New target URL (checked by the SSRF guard); default: the delivery's URL, "
        "or `WEBHOOK_URL` when it had none.",
    )


def _view(row: WebhookDelivery, attempts: list[WebhookAttempt]) -> DeliveryView:
    return DeliveryView(
        id=row.id,
        instanceId=row.instance_id,
        eventType=row.event_type,
        url=row.url,
        status=row.status,  # type: ignore[arg-type]
        attempts=row.attempts,
        createdAt=iso(row.created_at) or "",
        deliveredAt=iso(row.delivered_at),
        nextAttemptAt=iso(row.next_attempt_at),
        lastError=row.last_error,
        attemptsLog=[
            AttemptView(
                attemptedAt=iso(a.attempted_at) or "",
                statusCode=a.status_code,
                error=a.error,
                durationMs=a.duration_ms,
            )
            for a in attempts
        ],
    )


async def list_deliveries(db: Database, instance_id: str) -> DeliveryList:
    """Deliveries of an instance (our id or its Novita id), newest first, with their attempts."""
    async with db.read_session() as session:
        found = await session.scalar(
            select(Instance.id).where(
                or_(Instance.id == instance_id, Instance.novita_instance_id == instance_id)
            )
        )
        if found is None:
            raise InstanceNotFound(f"Instance {instance_id} not found")
        rows = (
            await session.scalars(
                select(WebhookDelivery)
                .where(WebhookDelivery.instance_id == found)
                .order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id)
            )
        ).all()
        attempts = (
            await session.scalars(
                select(WebhookAttempt)
                .where(WebhookAttempt.delivery_id.in_([row.id for row in rows]))
                .order_by(WebhookAttempt.attempted_at, WebhookAttempt.id)
            )
        ).all()
    by_delivery: dict[str, list[WebhookAttempt]] = {}
    for attempt in attempts:
        by_delivery.setdefault(attempt.delivery_id, []).append(attempt)
    return DeliveryList(deliveries=[_view(row, by_delivery.get(row.id, [])) for row in rows])


def _url_error(message: str) -> ValidationFailed:
    return ValidationFailed(message, details=[{"field": "url", "message": message}])


async def redeliver(
    db: Database, settings: Settings, delivery_id: str, url: str | None = None
) -> DeliveryView:
    """Queue a delivery again now, same id (= `webhook-id`), attempts reset, optionally a new URL.

    A claim in progress is taken away (its lease cleared), so the redelivery is not overwritten by
    a worker that was still sending; that worker's result is dropped (at-least-once delivery).
    """
    if url is not None:
        try:
            validate_webhook_url(url, settings.webhook_allow_private)
        except WebhookUrlRefused as refused:
            raise _url_error(f"webhook URL refused: {refused.reason}") from None
    async with db.session() as session, session.begin():
        row = await session.get(WebhookDelivery, delivery_id, with_for_update=True)
        if row is None:
            raise NotFound(f"Webhook delivery {delivery_id} not found")
        target = url or row.url or settings.webhook_url
        if target is None:
            raise _url_error("this delivery has no URL and WEBHOOK_URL is not set: give `url`")
        row.url = target
        row.status = "pending"
        row.attempts = 0
        row.next_attempt_at = utcnow()
        row.delivered_at = None
        row.last_error = None
        row.lock_owner = row.lock_token = row.lock_expires_at = None
        attempts = (
            await session.scalars(
                select(WebhookAttempt)
                .where(WebhookAttempt.delivery_id == delivery_id)
                .order_by(WebhookAttempt.attempted_at, WebhookAttempt.id)
            )
        ).all()
        view = _view(row, list(attempts))
    log.info("webhook_redelivery_queued", delivery_id=delivery_id, url_changed=url is not None)
    return view


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


@router.get(
    "/api/instances/{instanceId}/webhooks",
    response_model=DeliveryList,
    responses=error_responses(
        400,
        404,
        e400="Invalid `instanceId` (`VALIDATION_ERROR`: over 100 characters)",
        e404="No such instance (`INSTANCE_NOT_FOUND`)",
    ),
    summary="Webhook deliveries of an instance, with every attempt",
    description="Each state change that notifies (`instance.running`, `instance.failed`, "
    "`instance.stopped`, `instance.deleted`) is one delivery; failed ones stay visible and can "
    "be redelivered. `instanceId` may be our id or the Novita instance id.",
)
async def get_instance_webhooks(
    runtime: RuntimeDep,
    instance_id: Annotated[str, Path(alias="instanceId", max_length=100)],
) -> DeliveryList:
    return await list_deliveries(runtime.db, instance_id)


@router.post(
    "/api/webhooks/{deliveryId}/redeliver",
    status_code=202,
    response_model=DeliveryView,
    responses=error_responses(
        400,
        404,
        e400="The new URL is refused (`VALIDATION_ERROR`, names `url`)",
        e404="No such delivery (`NOT_FOUND`)",
    ),
    summary="Deliver a webhook again",
    description="Queues the delivery now with its attempts reset and the same `webhook-id`, so "
    "receivers can deduplicate. An optional `url` changes the target (checked by the SSRF "
    "guard). The attempt log keeps earlier attempts.",
)
async def redeliver_webhook(
    runtime: RuntimeDep,
    delivery_id: Annotated[str, Path(alias="deliveryId", max_length=100)],
    body: Annotated[RedeliverBody | None, Body()] = None,
) -> DeliveryView:
    view = await redeliver(
        runtime.db, runtime.settings, delivery_id, body.url if body is not None else None
    )
    runtime.webhook_pipeline.hint()
    return view
