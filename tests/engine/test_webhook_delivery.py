"""The delivery pipeline end to end: a real database, a real receiver on 127.0.0.1."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update
from standardwebhooks import Webhook

from novita_manager.config import Settings
from novita_manager.engine.leases import Lease
from novita_manager.engine.pipeline import Pipeline
from novita_manager.engine.webhook_delivery import build_webhook_pipeline, webhook_sender_of
from novita_manager.engine.webhook_outcome import encode_body, next_step
from novita_manager.metrics import Metrics
from novita_manager.store.db import Database
from novita_manager.store.models import WebhookDelivery
from novita_manager.store.types import utcnow
from novita_manager.webhooks.sender import AttemptResult
from tests.fixtures.webhook_receiver import Reply, WebhookReceiver
from tests.webhooks.factories import (
    SECRET,
    add_delivery,
    add_instance,
    fast_settings,
    load_attempts,
    load_delivery,
)

TERMINAL = {"delivered", "failed", "skipped"}


class Harness:
    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.settings = settings
        self.metrics = Metrics()
        self.pipeline: Pipeline[WebhookDelivery] = build_webhook_pipeline(
            db, settings, self.metrics, "test-owner"
        )

    def count(self, outcome: str) -> float:
        return self.metrics.webhook_deliveries.labels(outcome)._value.get()

    async def run_until_done(self, delivery_id: str, timeout: float = 10.0) -> WebhookDelivery:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            await self.pipeline.run_once()
            row = await load_delivery(self.db, delivery_id)
            if row.status in TERMINAL:
                return row
            await asyncio.sleep(0.01)
        raise AssertionError(f"delivery {delivery_id} still {row.status} after {timeout} s")

    async def close(self) -> None:
        await webhook_sender_of(self.pipeline).aclose()


@pytest.fixture
async def make(db: Database, database_url: str) -> AsyncIterator:
    harnesses: list[Harness] = []

    def factory(**overrides: object) -> Harness:
        harness = Harness(db, fast_settings(database_url, **overrides))
        harnesses.append(harness)
        return harness

    yield factory
    for harness in harnesses:
        await harness.close()


async def test_delivers_a_signed_event_and_records_the_attempt(
    make, db: Database, webhook_receiver: WebhookReceiver
) -> None:
    harness = make()
    delivery_id = await add_delivery(db, await add_instance(db), webhook_receiver.url)
    row = await harness.run_until_done(delivery_id)

    assert row.status == "delivered"
    assert row.attempts == 1
    assert row.delivered_at is not None
    assert row.next_attempt_at is None
    assert row.lock_token is None
    (request,) = webhook_receiver.requests()
    assert request.headers["webhook-id"] == delivery_id
    assert request.body == encode_body(row.payload)
    assert Webhook(SECRET).verify(request.body, request.headers)["type"] == "instance.running"
    (attempt,) = await load_attempts(db, delivery_id)
    assert attempt.status_code == 200
    assert attempt.error is None
    assert attempt.duration_ms > 0
    assert harness.count("delivered") == 1


async def test_fails_twice_then_succeeds_on_the_third_attempt_with_the_same_id(
    make, db: Database, webhook_receiver: WebhookReceiver
) -> None:
    harness = make()
    webhook_receiver.fail(2, status=503)
    delivery_id = await add_delivery(db, await add_instance(db), webhook_receiver.url)
    row = await harness.run_until_done(delivery_id)

    assert row.status == "delivered"
    assert row.attempts == 3
    requests = webhook_receiver.requests()
    assert len(requests) == 3
    assert {r.headers["webhook-id"] for r in requests} == {delivery_id}
    assert {r.body for r in requests} == {requests[0].body}
    for request in requests:
        Webhook(SECRET).verify(request.body, request.headers)
    attempts = await load_attempts(db, delivery_id)
    assert [a.status_code for a in attempts] == [503, 503, 200]
    assert attempts[0].error == "receiver answered 503"
    assert harness.count("retry") == 2
    assert harness.count("delivered") == 1


async def test_hanging_receiver_times_out_and_is_retried(
    make, db: Database, webhook_receiver: WebhookReceiver
) -> None:
    harness = make(webhook_timeout=0.3)
    webhook_receiver.script(Reply(delay=5))
    delivery_id = await add_delivery(db, await add_instance(db), webhook_receiver.url)
    row = await harness.run_until_done(delivery_id)

    assert row.status == "delivered"
    attempts = await load_attempts(db, delivery_id)
    assert [(a.status_code, a.error) for a in attempts] == [
        (None, "timed out after 0.3 s"),
        (200, None),
    ]
    assert attempts[0].duration_ms >= 300


async def test_400_is_not_retried(make, db: Database, webhook_receiver: WebhookReceiver) -> None:
    harness = make()
    webhook_receiver.script(Reply(400))
    delivery_id = await add_delivery(db, await add_instance(db), webhook_receiver.url)
    row = await harness.run_until_done(delivery_id)

    assert row.status == "failed"
    assert row.attempts == 1
    assert row.next_attempt_at is None
    assert row.last_error == "receiver answered 400"
    assert len(webhook_receiver.requests()) == 1
    assert harness.count("failed") == 1


async def test_redirect_fails_without_following(
    make, db: Database, webhook_receiver: WebhookReceiver
) -> None:
    harness = make()
    webhook_receiver.script(Reply(302, headers={"Location": "http://127.0.0.1:1/"}))
    delivery_id = await add_delivery(db, await add_instance(db), webhook_receiver.url)
    row = await harness.run_until_done(delivery_id)
    assert row.status == "failed"
    assert "redirect" in (row.last_error or "")
    assert len(webhook_receiver.requests()) == 1


async def test_fails_after_the_retries_are_exhausted(
    make, db: Database, webhook_receiver: WebhookReceiver
) -> None:
    harness = make(webhook_max_retries=2)
    webhook_receiver.fail(10, status=500)
    delivery_id = await add_delivery(db, await add_instance(db), webhook_receiver.url)
    row = await harness.run_until_done(delivery_id)

    assert row.status == "failed"
    assert row.attempts == 3  # 1 + 2 retries
    assert row.last_error == "receiver answered 500"
    assert len(webhook_receiver.requests()) == 3
    assert len(await load_attempts(db, delivery_id)) == 3
    assert harness.count("retry") == 2
    assert harness.count("failed") == 1


async def test_private_target_is_refused_and_recorded(
    make, db: Database, webhook_receiver: WebhookReceiver
) -> None:
    harness = make(webhook_allow_private=False)
    delivery_id = await add_delivery(db, await add_instance(db), webhook_receiver.url)
    row = await harness.run_until_done(delivery_id)

    assert row.status == "failed"
    assert row.last_error is not None
    assert row.last_error.startswith("refused: 127.0.0.1 is a loopback address")
    (attempt,) = await load_attempts(db, delivery_id)
    assert attempt.status_code is None
    assert attempt.error == row.last_error
    assert webhook_receiver.requests() == []
    assert harness.count("refused") == 1


async def test_delivery_without_url_is_skipped(make, db: Database) -> None:
    harness = make()
    delivery_id = await add_delivery(db, await add_instance(db), None)
    row = await harness.run_until_done(delivery_id)
    assert row.status == "skipped"
    assert row.next_attempt_at is None
    assert await load_attempts(db, delivery_id) == []
    assert harness.count("skipped") == 1


async def test_rows_inserted_as_skipped_are_never_claimed(make, db: Database) -> None:
    harness = make()
    await add_delivery(db, await add_instance(db), None, status="skipped")
    assert await harness.pipeline.run_once() == 0


async def test_result_with_a_lost_lease_is_dropped(
    make, db: Database, webhook_receiver: WebhookReceiver
) -> None:
    harness = make()
    delivery_id = await add_delivery(db, await add_instance(db), webhook_receiver.url)
    row = await load_delivery(db, delivery_id)
    await harness.pipeline.handler(Lease(delivery_id, "not-the-token", "someone"), row)

    assert len(webhook_receiver.requests()) == 1  # sent (at least once) ...
    assert (await load_delivery(db, delivery_id)).status == "pending"  # ... but not recorded
    assert await load_attempts(db, delivery_id) == []


async def test_429_retry_after_is_honoured(
    make, db: Database, webhook_receiver: WebhookReceiver
) -> None:
    harness = make()
    webhook_receiver.script(Reply(429, headers={"Retry-After": "1"}))
    delivery_id = await add_delivery(db, await add_instance(db), webhook_receiver.url)
    await harness.pipeline.run_once()
    row = await load_delivery(db, delivery_id)
    assert row.status == "pending"
    assert row.next_attempt_at is not None
    (attempt,) = await load_attempts(db, delivery_id)
    wait = (row.next_attempt_at - attempt.attempted_at).total_seconds()
    assert 0.9 < wait < 3  # 1 s Retry-After, not the 0.01 s base
    row = await harness.run_until_done(delivery_id)
    assert row.status == "delivered"


NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _result(**fields: object) -> AttemptResult:
    values: dict = {
        "status_code": 500,
        "error": "receiver answered 500",
        "duration_ms": 1.0,
        "retry_after": None,
        "retryable": True,
        "delivered": False,
    }
    values.update(fields)
    return AttemptResult(**values)


@pytest.mark.parametrize(("attempts", "low", "high"), [(0, 0.8, 1.2), (1, 1.6, 2.4), (2, 3.2, 4.8)])
def test_backoff_doubles_with_jitter(attempts: int, low: float, high: float) -> None:
    outcome, values = next_step(attempts, _result(), NOW, max_retries=3, retry_base=1.0)
    assert outcome == "retry"
    assert values["attempts"] == attempts + 1
    assert low <= (values["next_attempt_at"] - NOW).total_seconds() <= high


def test_no_retry_after_the_last_allowed_attempt() -> None:
    outcome, values = next_step(3, _result(), NOW, max_retries=3, retry_base=1.0)
    assert outcome == "failed"
    assert values == {
        "status": "failed",
        "attempts": 4,
        "next_attempt_at": None,
        "last_error": "receiver answered 500",
    }


def test_zero_retries_means_one_attempt() -> None:
    assert next_step(0, _result(), NOW, max_retries=0, retry_base=1.0)[0] == "failed"


def test_refusal_is_a_failure_counted_as_refused() -> None:
    refused = _result(status_code=None, error="refused: x", retryable=False, refused=True)
    outcome, values = next_step(0, refused, NOW, max_retries=3, retry_base=1.0)
    assert (outcome, values["status"]) == ("refused", "failed")


async def test_a_delivered_event_makes_the_instances_next_one_due_at_once(
    make, db: Database, webhook_receiver: WebhookReceiver
) -> None:
    """The wake of an instance's later deliveries to the same URL goes out with the other
    results of its transaction (`Batch.later`), and still wakes them: the later one here had
    been put back for an hour behind the first."""
    harness = make()
    instance = await add_instance(db)
    first = await add_delivery(db, instance, webhook_receiver.url)
    later = await add_delivery(db, instance, webhook_receiver.url, event_type="instance.stopped")
    other = await add_delivery(db, await add_instance(db), webhook_receiver.url)
    hour = utcnow() + timedelta(hours=1)
    async with db.session() as session, session.begin():
        await session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id.in_([later, other]))
            .values(next_attempt_at=hour)
        )
    assert (await harness.run_until_done(first)).status == "delivered"
    woken = await load_delivery(db, later)
    assert woken.status == "pending"
    assert woken.next_attempt_at is not None
    assert woken.next_attempt_at <= utcnow()
    assert (await load_delivery(db, other)).next_attempt_at == hour  # another instance's
    assert (await harness.run_until_done(later)).status == "delivered"


def test_the_body_is_compact_utf8_json_in_the_payloads_order() -> None:
    """orjson writes what the standard library wrote with compact separators and UTF-8 for a
    payload's values (text, numbers, booleans, nulls, nested lists and objects)."""
    import json

    payload = {
        "type": "instance.running",
        "timestamp": "2026-01-01T00:00:00Z",
        "data": {
            "instanceId": "i-1",
            "elapsedTime": 52.125,
            "instance": {"name": "日本語 ü", "gpuNum": 1, "stale": False, "lastError": None},
            "ports": [{"port": 8888, "price": 0.35}],
        },
    }
    expected = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    assert encode_body(payload) == expected
