"""What one webhook attempt leaves: the request body, its history row, and the delivery's
values after it."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import orjson

from novita_manager.backoff import backoff_delay
from novita_manager.domain.statuses import DeliveryStatus
from novita_manager.engine.group_commit import NewRow
from novita_manager.engine.retry import truncate_error
from novita_manager.store.models import WebhookAttempt
from novita_manager.webhooks.sender import AttemptResult

MAX_BACKOFF = 3600.0


def encode_body(payload: dict[str, Any]) -> bytes:
    """The request body: compact UTF-8 JSON of the stored payload, identical on every attempt
    (what the signature covers). orjson: the standard library's encoder showed in a burst's
    profile."""
    return orjson.dumps(payload, option=orjson.OPT_NON_STR_KEYS)


def attempt_row(delivery_id: str, at: datetime, result: AttemptResult) -> NewRow:
    """The attempt's history row (`webhook_attempts`), inserted with the delivery's result."""
    return NewRow(
        WebhookAttempt,
        {
            "delivery_id": delivery_id,
            "attempted_at": at,
            "status_code": result.status_code,
            "error": result.error,
            "duration_ms": result.duration_ms,
        },
    )


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
            "status": DeliveryStatus.DELIVERED.value,
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
        "status": DeliveryStatus.FAILED.value,
        "attempts": made,
        "next_attempt_at": None,
        "last_error": error,
    }
