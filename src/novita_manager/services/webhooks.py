"""Use cases of the webhook deliveries API (CONTRACT.md "Webhooks"): list and redeliver.

They take the database and settings explicitly so they are tested without the app; the router
only wakes the delivery pipeline after a redelivery.
"""

from __future__ import annotations

from sqlalchemy import or_, select

from novita_manager.config import Settings
from novita_manager.domain.statuses import DeliveryStatus
from novita_manager.domain.views import DeliveryList, DeliveryView
from novita_manager.errors import InstanceNotFound, NotFound, ValidationFailed
from novita_manager.logging import get_logger
from novita_manager.store.db import Database
from novita_manager.store.models import Instance, WebhookAttempt, WebhookDelivery
from novita_manager.store.types import utcnow
from novita_manager.store.views import delivery_view
from novita_manager.webhooks.ssrf import WebhookUrlRefused, validate_webhook_url

log = get_logger(__name__)


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
    return DeliveryList(
        deliveries=[delivery_view(row, by_delivery.get(row.id, [])) for row in rows]
    )


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
        row.status = DeliveryStatus.PENDING.value
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
        view = delivery_view(row, list(attempts))
    log.info("webhook_redelivery_queued", delivery_id=delivery_id, url_changed=url is not None)
    return view
