"""Limits end to end: autoStopAfter, autoDeleteAfter, maxCost and idleStopAfter each fire once, on
time within one poll interval, through the normal operation path (a request with its cause, the
history, `instance.stopped`/`instance.deleted` with `reason`), warned by `instance.expiring`;
and never for an instance the user stopped or deleted meanwhile."""

from __future__ import annotations

import json
import time
from datetime import datetime
from typing import Any

import httpx
import pytest

from tests.api.test_instances_e2e import create, get, wait_status
from tests.fixtures.service import ServiceThread
from tests.fixtures.waiting import wait_for
from tests.fixtures.webhook_receiver import WebhookReceiver

POLL = 0.2  # INSTANCE_POLL_INTERVAL of these services
LATE = POLL + 0.6  # one poll interval, and room for a busy test machine


@pytest.fixture
def service(simulator, make_service, webhook_receiver, database_url) -> ServiceThread:
    """A service on SQLite and on PostgreSQL (the `database_url` fixture)."""
    return make_service(
        simulator.base_url,
        database_url,
        WEBHOOK_URL=webhook_receiver.url,
        INSTANCE_POLL_INTERVAL=str(POLL),
        EXPIRY_WARNING_LEAD="1",
    )


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def operations(service: ServiceThread, instance_id: str) -> list[dict[str, Any]]:
    url = f"{service.base_url}/api/instances/{instance_id}/operations"
    ops: list[dict[str, Any]] = httpx.get(url, timeout=5).json()["operations"]
    return ops


def hooks(receiver: WebhookReceiver, instance_id: str, kind: str) -> list[dict[str, Any]]:
    bodies = [json.loads(request.body) for request in receiver.requests()]
    return [b for b in bodies if b["type"] == kind and b["data"]["instanceId"] == instance_id]


def launch(service: ServiceThread, **limits: Any) -> dict[str, Any]:
    response = create(service, name="limited", **limits)
    assert response.status_code == 201, response.text
    return wait_status(service, response.json()["instanceId"], "running", 60)


def fired_once(
    service: ServiceThread,
    receiver: WebhookReceiver,
    view: dict[str, Any],
    *,
    cause: str,
    operation: str,
    due: datetime,
) -> None:
    """One request by `cause`, made within one poll interval of `due`, carried out with its
    webhook and history reason, warned ahead once."""
    instance_id = view["id"]
    final = "stopped" if operation == "stop" else "deleted"
    wait_status(service, instance_id, final, 30)
    ops = operations(service, instance_id)
    assert [(op["operation"], op["cause"], op["state"]) for op in ops] == [
        (operation, cause, "succeeded")
    ]
    late = (at(ops[0]["requestedAt"]) - due).total_seconds()
    assert -0.05 <= late <= LATE, late
    event = f"instance.{final}"
    wait_for(lambda: hooks(receiver, instance_id, event), 10, event)
    [hook] = hooks(receiver, instance_id, event)
    assert hook["data"]["reason"] == cause
    history = [
        event["data"]["reason"]
        for event in httpx.get(
            f"{service.base_url}/api/instances/{instance_id}/events", timeout=5
        ).json()["events"]
        if event["type"] == "instance.status"
    ]
    assert f"{operation} requested (#1) by {cause}" in history
    assert f"{final} (reason: {cause})" in history
    [warning] = hooks(receiver, instance_id, "instance.expiring")
    assert warning["data"]["action"] == operation
    assert warning["data"]["reason"] == cause
    assert abs((at(warning["data"]["at"]) - due).total_seconds()) < 0.05
    time.sleep(2 * POLL)  # nothing fires again
    assert len(operations(service, instance_id)) == 1


def test_auto_stop_fires_once_after_running_for_the_duration(service, webhook_receiver) -> None:
    view = launch(service, autoStopAfter="2s")
    due = at(view["readyAt"]).timestamp() + 2
    assert at(view["expiresAt"]).timestamp() == pytest.approx(due, abs=0.001)
    fired_once(
        service,
        webhook_receiver,
        view,
        cause="auto-stop",
        operation="stop",
        due=datetime.fromtimestamp(due, at(view["readyAt"]).tzinfo),
    )


def test_auto_delete_fires_once_after_the_duration_from_the_request(
    service, webhook_receiver
) -> None:
    view = launch(service, autoDeleteAfter=3)
    due = at(view["createdAt"]).timestamp() + 3
    fired_once(
        service,
        webhook_receiver,
        view,
        cause="auto-delete",
        operation="delete",
        due=datetime.fromtimestamp(due, at(view["createdAt"]).tzinfo),
    )


def test_max_cost_stops_the_instance_when_its_cost_reaches_the_budget(
    service, webhook_receiver
) -> None:
    # RTX 4090 spot: $0.175/h; $0.0001 is reached after about 2 s of billed time.
    view = launch(service, maxCost=0.0001)
    assert view["expiresAt"] is not None
    due = at(view["expiresAt"])
    fired_once(service, webhook_receiver, view, cause="max-cost", operation="stop", due=due)
    stopped = get(service, view["id"])
    # Reached the budget, and overshot it only by the time the stop took (Novita bills until
    # the instance is exited): at most a few seconds at the instance's rate.
    overshoot = stopped["costToDate"] - 0.0001
    assert -0.000005 < overshoot < view["pricePerHour"] * 5 / 3600, stopped["costToDate"]


def test_idle_stop_fires_once_the_gpu_stayed_idle_for_the_duration(
    service, simulator, webhook_receiver
) -> None:
    view = launch(service, idleStopAfter="2s")
    time.sleep(1)  # busy (the simulator reports 85 %): nothing happens
    assert get(service, view["id"])["status"] == "running"
    idle = simulator.control.set_utilization(view["novitaInstanceId"], 1.0)
    due = datetime.fromtimestamp(idle["since"] + 2, at(view["readyAt"]).tzinfo)
    # The warning is sent once the idle stretch is seen, so it may come later than 1 s ahead.
    wait_status(service, view["id"], "stopped", 30)
    ops = operations(service, view["id"])
    assert [(op["operation"], op["cause"]) for op in ops] == [("stop", "idle")]
    late = (at(ops[0]["requestedAt"]) - due).total_seconds()
    assert -0.05 <= late <= LATE, late
    wait_for(lambda: hooks(webhook_receiver, view["id"], "instance.stopped"), 10, "stopped")
    [hook] = hooks(webhook_receiver, view["id"], "instance.stopped")
    assert hook["data"]["reason"] == "idle"


def test_no_limit_fires_for_an_instance_the_user_stopped_or_deleted_meanwhile(
    service, webhook_receiver
) -> None:
    def launch_and(operation: str, **limits: Any) -> dict[str, Any]:
        view = launch(service, **limits)
        url = f"{service.base_url}/api/instances/{view['id']}"
        answer = httpx.delete(url) if operation == "delete" else httpx.post(f"{url}/stop")
        assert answer.status_code == 202, answer.text
        return view

    stopped = launch_and("stop", autoStopAfter="3s", maxCost=0.00015)
    deleted = launch_and("delete", autoDeleteAfter="4s", autoStopAfter="3s")
    wait_status(service, stopped["id"], "stopped", 30)
    wait_status(service, deleted["id"], "deleted", 30)
    time.sleep(4.5)  # past every limit
    for view, operation in ((stopped, "stop"), (deleted, "delete")):
        ops = operations(service, view["id"])
        assert [(op["operation"], op["cause"]) for op in ops] == [(operation, "user")]
        event = "instance.stopped" if operation == "stop" else "instance.deleted"
        [hook] = hooks(webhook_receiver, view["id"], event)
        assert hook["data"]["reason"] == "user"
    assert get(service, stopped["id"])["expiresAt"] is None
