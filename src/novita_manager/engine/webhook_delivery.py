"""The webhook delivery pipeline: outbox rows (`WebhookDelivery`, status "pending") become signed
HTTP requests, each attempt recorded.

One step of a claimed row: encode the stored payload (the contract body, written by the lifecycle
in the same transaction as the state change), sign it with the delivery id as `webhook-id` and a
fresh `webhook-timestamp`, send one attempt outside any transaction, then in ONE transaction under
the lease insert the `WebhookAttempt` and move the row on:

- delivered: status "delivered", `delivered_at`, `next_attempt_at` NULL;
- retryable failure with retries left: still "pending", `attempts`+1, `next_attempt_at` = now +
  `webhook_retry_base`·2^(n-1) with ±20 % jitter, or the receiver's `Retry-After`;
- otherwise (not retryable, refused by the SSRF guard, retries exhausted): status "failed".

`attempts` counts HTTP attempts since the row was (re)queued; at most 1 + `webhook_max_retries`.
A row without a URL (no webhook configured) is marked "skipped" and logged; the lifecycle may also
insert it as "skipped" directly, which this pipeline never sees.

Crash safety: when the process dies after sending and before recording, nothing is written; the
lease expires and the still-pending row is sent again with the same `webhook-id`. Delivery is at
least once; receivers deduplicate by `webhook-id`. A result whose lease was lost is dropped.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from novita_manager.config import Settings
from novita_manager.engine.leases import Lease, LeaseLost, require, write_with_lease
from novita_manager.engine.pipeline import Pipeline
from novita_manager.engine.retry import backoff_delay, truncate_error
from novita_manager.logging import get_logger
from novita_manager.metrics import Metrics
from novita_manager.store.db import Database
from novita_manager.store.models import WebhookAttempt, WebhookDelivery
from novita_manager.store.types import utcnow
from novita_manager.webhooks.sender import AttemptResult, WebhookSender
from novita_manager.webhooks.signing import WebhookSigner

PIPELINE_NAME = "webhook_delivery"
MAX_BACKOFF = 3600.0
log = get_logger(__name__)


def encode_body(payload: dict[str, Any]) -> bytes:
    """The request body: compact UTF-8 JSON of the stored payload, identical on every attempt."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def next_step(
    attempts: int,
    result: AttemptResult,
    now: datetime,
    *,
    max_retries: int,
    retry_base: float,
) -> tuple[str, dict[str, Any]]:
    """The outcome (metrics label) and the row's new values after one attempt of a delivery that
    had made `attempts` attempts before."""
    made = attempts + 1
    if result.delivered:
        return "delivered", {
            "status": "delivered",
            "attempts": made,
            "delivered_at": now,
            "next_attempt_at": None,
            "last_error": None,
        }
    error = truncate_error(result.error or f"receiver answered {result.status_code}")
    if result.retryable and made <= max_retries:
        if result.retry_after is not None:
            delay = result.retry_after
        else:
            delay = backoff_delay(made, retry_base, cap=MAX_BACKOFF)
        return "retry", {
            "attempts": made,
            "next_attempt_at": now + timedelta(seconds=delay),
            "last_error": error,
        }
    return "refused" if result.refused else "failed", {
        "status": "failed",
        "attempts": made,
        "next_attempt_at": None,
        "last_error": error,
    }


class WebhookDeliveryHandler:
    """The pipeline handler: one attempt of one claimed delivery (see the module docstring)."""

    def __init__(
        self, *, db: Database, settings: Settings, metrics: Metrics, sender: WebhookSender
    ) -> None:
        self.db = db
        self.settings = settings
        self.metrics = metrics
        self.sender = sender
        secret = settings.webhook_secret
        self.signer = WebhookSigner(secret.get_secret_value() if secret else None)

    async def __call__(self, lease: Lease, row: WebhookDelivery) -> None:
        if row.status != "pending":
            return  # the pipeline releases the lease; nothing to do
        if row.url is None:
            await self._skip(lease, row)
            return
        body = encode_body(row.payload)
        started_at = utcnow()
        headers = self.signer.headers(row.id, started_at, body)
        result = await self.sender.send(
            row.url,
            body,
            headers,
            timeout=self.settings.webhook_timeout,
            allow_private=self.settings.webhook_allow_private,
        )
        outcome, values = next_step(
            row.attempts,
            result,
            utcnow(),
            max_retries=self.settings.webhook_max_retries,
            retry_base=self.settings.webhook_retry_base,
        )
        attempt = WebhookAttempt(
            delivery_id=row.id,
            attempted_at=started_at,
            status_code=result.status_code,
            error=result.error,
            duration_ms=result.duration_ms,
        )
        try:
            async with self.db.session() as session, session.begin():
                require(
                    await write_with_lease(session, WebhookDelivery, lease, values, release=True)
                )
                session.add(attempt)
        except LeaseLost:
            log.warning("webhook_result_dropped", delivery_id=row.id, reason="lease lost")
            return
        self.metrics.webhook_deliveries.labels(outcome).inc()
        log.info(
            "webhook_attempt",
            delivery_id=row.id,
            event_type=row.event_type,
            instance_id=row.instance_id,
            host=urlsplit(row.url).hostname,
            outcome=outcome,
            attempt=values["attempts"],
            status_code=result.status_code,
            error=result.error,
            duration_ms=result.duration_ms,
        )

    async def _skip(self, lease: Lease, row: WebhookDelivery) -> None:
        values = {"status": "skipped", "next_attempt_at": None, "last_error": None}
        async with self.db.session() as session, session.begin():
            if not await write_with_lease(session, WebhookDelivery, lease, values, release=True):
                return
        self.metrics.webhook_deliveries.labels("skipped").inc()
        log.info(
            "webhook_skipped",
            delivery_id=row.id,
            event_type=row.event_type,
            instance_id=row.instance_id,
            reason="no webhook URL configured",
        )


def build_webhook_pipeline(
    db: Database,
    settings: Settings,
    metrics: Metrics,
    owner: str | None = None,
    *,
    sender: WebhookSender | None = None,
) -> Pipeline[WebhookDelivery]:
    """The delivery pipeline over pending deliveries.

    Pass the runtime's `WebhookSender` and close it after `pipeline.stop()`; without one a sender
    is created and reachable (for closing) as `pipeline.handler.sender`.
    """
    handler = WebhookDeliveryHandler(
        db=db, settings=settings, metrics=metrics, sender=sender or WebhookSender()
    )
    return Pipeline(
        name=PIPELINE_NAME,
        db=db,
        model=WebhookDelivery,
        handler=handler,
        due_filter=WebhookDelivery.status == "pending",
        workers=settings.pipeline_workers,
        lease_seconds=settings.lease_seconds,
        owner=owner,
        metrics=metrics,
        retry_base=max(settings.webhook_retry_base, 0.05),
        retry_cap=MAX_BACKOFF,
    )


def webhook_sender_of(pipeline: Pipeline[WebhookDelivery]) -> WebhookSender:
    """The sender a pipeline built by `build_webhook_pipeline` uses (to close it on shutdown)."""
    handler = pipeline.handler
    assert isinstance(handler, WebhookDeliveryHandler)
    return handler.sender
