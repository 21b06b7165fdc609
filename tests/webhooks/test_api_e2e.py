"""The deliveries API through the whole service: real app and runtime, the simulator as Novita,
a real receiver; a signed `instance.running` arrives, shows up in the API and can be redelivered."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
from standardwebhooks import Webhook

from tests.fixtures.service import ServiceThread
from tests.fixtures.waiting import wait_for
from tests.fixtures.webhook_receiver import Reply, WebhookReceiver
from tests.webhooks.factories import SECRET


def test_running_event_is_listed_and_redelivered(
    simulator: Any, make_service: Callable[..., ServiceThread], webhook_receiver: WebhookReceiver
) -> None:
    webhook_receiver.script(Reply(500))  # the first attempt fails, the retry succeeds
    service = make_service(simulator.base_url, WEBHOOK_URL=webhook_receiver.url)
    api = httpx.Client(base_url=service.base_url, timeout=10)
    created = api.post(
        "/api/instances",
        json={"name": "hook-e2e", "productName": "RTX 4090 24GB", "templateId": "1"},
    )
    assert created.status_code == 201, created.text
    instance_id = created.json()["instanceId"]

    first, second = webhook_receiver.wait_for(2, timeout=30)
    assert first.headers["webhook-id"] == second.headers["webhook-id"]

    def delivered() -> dict[str, Any] | None:
        response = api.get(f"/api/instances/{instance_id}/webhooks")
        assert response.status_code == 200, response.text
        items = response.json()["deliveries"]
        return items[0] if items and items[0]["status"] == "delivered" else None

    delivery = wait_for(delivered)
    assert delivery["id"] == second.headers["webhook-id"]
    assert delivery["eventType"] == "instance.running"
    assert [a["statusCode"] for a in delivery["attemptsLog"]] == [500, 200]

    redelivered = api.post(f"/api/webhooks/{delivery['id']}/redeliver")
    assert redelivered.status_code == 202, redelivered.text
    third = webhook_receiver.wait_for(3)[2]
    assert third.headers["webhook-id"] == delivery["id"]
    assert third.body == second.body
    assert api.post("/api/webhooks/unknown/redeliver").json()["error"]["code"] == "NOT_FOUND"
    missing = api.get("/api/instances/unknown/webhooks")
    assert missing.json()["error"]["code"] == "INSTANCE_NOT_FOUND"


def test_events_are_signed_with_the_configured_secret(
    simulator: Any, make_service: Callable[..., ServiceThread], webhook_receiver: WebhookReceiver
) -> None:
    service = make_service(
        simulator.base_url, WEBHOOK_URL=webhook_receiver.url, WEBHOOK_SECRET=SECRET
    )
    response = httpx.post(
        f"{service.base_url}/api/instances",
        json={"name": "signed", "productName": "RTX 4090 24GB", "templateId": "1"},
        timeout=10,
    )
    assert response.status_code == 201, response.text
    (request,) = webhook_receiver.wait_for(1, timeout=30)
    event = Webhook(SECRET).verify(request.body, request.headers)
    assert event["type"] == "instance.running"
    assert event["data"]["instanceId"] == response.json()["instanceId"]
