"""The deliveries API over a real database: the use cases directly, and the router over HTTP
(a minimal app with the real router, error handlers and delivery pipeline; the full service
with its runtime is exercised by the lead's end-to-end tests)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from novita_manager.api.errors import install_error_handlers
from novita_manager.api.webhooks import router
from novita_manager.engine.webhook_delivery import build_webhook_pipeline, webhook_sender_of
from novita_manager.errors import InstanceNotFound, NotFound, ValidationFailed
from novita_manager.metrics import Metrics
from novita_manager.services.webhooks import list_deliveries, redeliver
from novita_manager.store.db import Database
from novita_manager.store.models import WebhookDelivery
from tests.fixtures.webhook_receiver import Reply, WebhookReceiver
from tests.webhooks.factories import (
    SECRET,
    add_delivery,
    add_instance,
    fast_settings,
    load_delivery,
)


class Service:
    """The pieces the router needs (`app.state.runtime`), with a counted `hint`."""

    def __init__(self, db: Database, database_url: str, **overrides: Any) -> None:
        self.settings = fast_settings(database_url, **overrides)
        self.db = db
        self.pipeline = build_webhook_pipeline(db, self.settings, Metrics(), "api-test")
        self.hints = 0
        app = FastAPI()
        install_error_handlers(app)
        app.include_router(router)
        app.state.runtime = SimpleNamespace(
            db=db, settings=self.settings, webhook_pipeline=SimpleNamespace(hint=self._hint)
        )
        self.http = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://test"
        )

    def _hint(self) -> None:
        self.hints += 1

    async def drain(self, delivery_id: str) -> str:
        for _ in range(500):
            await self.pipeline.run_once()
            status = (await load_delivery(self.db, delivery_id)).status
            if status != "pending":
                return status
            await asyncio.sleep(0.01)
        raise AssertionError("delivery still pending")

    async def close(self) -> None:
        await self.http.aclose()
        await webhook_sender_of(self.pipeline).aclose()


@pytest.fixture
async def service(db: Database, database_url: str) -> AsyncIterator[Service]:
    service = Service(db, database_url)
    yield service
    await service.close()


async def test_lists_deliveries_with_attempts_by_either_id(
    service: Service, db: Database, webhook_receiver: WebhookReceiver
) -> None:
    instance_id = await add_instance(db, novita_id="novita-abc")
    webhook_receiver.fail(1)
    first = await add_delivery(db, instance_id, webhook_receiver.url)
    assert await service.drain(first) == "delivered"
    second = await add_delivery(db, instance_id, None, event_type="instance.stopped")
    await service.drain(second)

    for key in (instance_id, "novita-abc"):
        response = await service.http.get(f"/api/instances/{key}/webhooks")
        assert response.status_code == 200
        deliveries = response.json()["deliveries"]
        assert [d["id"] for d in deliveries] == [second, first]  # newest first
    skipped, delivered = deliveries
    assert skipped["status"] == "skipped"
    assert skipped["url"] is None
    assert skipped["attemptsLog"] == []
    assert delivered["eventType"] == "instance.running"
    assert delivered["status"] == "delivered"
    assert delivered["attempts"] == 2
    assert delivered["deliveredAt"].endswith("Z")
    assert delivered["nextAttemptAt"] is None
    assert [a["statusCode"] for a in delivered["attemptsLog"]] == [500, 200]
    assert delivered["attemptsLog"][0]["error"] == "receiver answered 500"
    assert delivered["attemptsLog"][0]["durationMs"] > 0
    assert SECRET not in response.text
    assert SECRET.removeprefix("whsec_") not in response.text


async def test_unknown_instance_is_404(service: Service) -> None:
    response = await service.http.get("/api/instances/nope/webhooks")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "INSTANCE_NOT_FOUND"
    with pytest.raises(InstanceNotFound):
        await list_deliveries(service.db, "nope")


async def test_redeliver_sends_again_with_the_same_webhook_id(
    service: Service, db: Database, webhook_receiver: WebhookReceiver
) -> None:
    webhook_receiver.script(Reply(400))
    delivery_id = await add_delivery(db, await add_instance(db), webhook_receiver.url)
    assert await service.drain(delivery_id) == "failed"

    response = await service.http.post(f"/api/webhooks/{delivery_id}/redeliver")
    assert response.status_code == 202
    body = response.json()
    assert (body["id"], body["status"], body["attempts"]) == (delivery_id, "pending", 0)
    assert body["lastError"] is None
    assert body["nextAttemptAt"] is not None
    assert len(body["attemptsLog"]) == 1  # history is kept
    assert service.hints == 1

    assert await service.drain(delivery_id) == "delivered"
    first, second = webhook_receiver.requests()
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == delivery_id
    row = await load_delivery(db, delivery_id)
    assert row.attempts == 1


async def test_redeliver_to_a_new_url(
    service: Service, db: Database, webhook_receiver: WebhookReceiver
) -> None:
    delivery_id = await add_delivery(db, await add_instance(db), None, status="skipped")
    new_url = webhook_receiver.url_with_host("127.0.0.1", "/new-hook")
    response = await service.http.post(
        f"/api/webhooks/{delivery_id}/redeliver", json={"url": new_url}
    )
    assert response.status_code == 202
    assert response.json()["url"] == new_url
    assert await service.drain(delivery_id) == "delivered"
    assert [r.path for r in webhook_receiver.requests()] == ["/new-hook"]


async def test_redeliver_refuses_a_private_url_when_not_allowed(
    db: Database, database_url: str
) -> None:
    strict = Service(db, database_url, webhook_allow_private=False)
    try:
        delivery_id = await add_delivery(db, await add_instance(db), "https://example.com/h")
        response = await strict.http.post(
            f"/api/webhooks/{delivery_id}/redeliver", json={"url": "http://169.254.169.254/x"}
        )
        assert response.status_code == 400
        error = response.json()["error"]
        assert error["code"] == "VALIDATION_ERROR"
        assert error["details"][0]["field"] == "url"
        assert "cloud metadata" in error["details"][0]["message"]
        assert strict.hints == 0
        assert (await load_delivery(db, delivery_id)).url == "https://example.com/h"
    finally:
        await strict.close()


async def test_redeliver_unknown_delivery_is_404(service: Service) -> None:
    response = await service.http.post("/api/webhooks/nope/redeliver")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "NOT_FOUND"
    with pytest.raises(NotFound):
        await redeliver(service.db, service.settings, "nope")


async def test_redeliver_without_any_url_is_400(service: Service, db: Database) -> None:
    delivery_id = await add_delivery(db, await add_instance(db), None, status="skipped")
    with pytest.raises(ValidationFailed, match="no URL"):
        await redeliver(service.db, service.settings, delivery_id)
    response = await service.http.post(
        f"/api/webhooks/{delivery_id}/redeliver", json={"unexpected": 1}
    )
    assert response.status_code == 400


async def test_redeliver_takes_over_a_claimed_row(service: Service, db: Database) -> None:
    delivery_id = await add_delivery(db, await add_instance(db), "https://example.com/h")
    async with db.session() as session, session.begin():
        row = await session.get(WebhookDelivery, delivery_id)
        assert row is not None
        row.lock_token, row.lock_owner = "stale", "someone"
    view = await redeliver(service.db, service.settings, delivery_id)
    assert view.status == "pending"
    row = await load_delivery(db, delivery_id)
    assert (row.lock_token, row.lock_owner, row.lock_expires_at) == (None, None, None)
