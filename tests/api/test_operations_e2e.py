"""Operation requests end to end: every start/stop/delete answered 202 takes effect or is recorded
as superseded or refused, with real servers on 127.0.0.1 and both databases."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

import httpx

from tests.api.test_instances_e2e import create, get, wait_status
from tests.fixtures.service import ServiceThread
from tests.fixtures.simulator import TEST_TIME_SCALE
from tests.fixtures.waiting import wait_for
from tests.fixtures.webhook_receiver import WebhookReceiver

FINAL = {"succeeded", "failed", "superseded", "refused"}


def operations(service: ServiceThread, instance_id: str) -> list[dict[str, Any]]:
    response = httpx.get(f"{service.base_url}/api/instances/{instance_id}/operations", timeout=5)
    assert response.status_code == 200, response.text
    ops: list[dict[str, Any]] = response.json()["operations"]
    return ops


def operate(service: ServiceThread, instance_id: str, operation: str) -> httpx.Response:
    url = f"{service.base_url}/api/instances/{instance_id}"
    if operation == "delete":
        return httpx.delete(url, timeout=15)
    return httpx.post(f"{url}/{operation}", timeout=15)


def settled(service: ServiceThread, instance_id: str) -> list[dict[str, Any]] | None:
    ops = operations(service, instance_id)
    return ops if all(op["state"] in FINAL for op in ops) else None


def events_of(receiver: WebhookReceiver, instance_id: str) -> list[str]:
    bodies = [json.loads(request.body) for request in receiver.requests()]
    return [b["type"] for b in bodies if b["data"]["instanceId"] == instance_id]


def notified(receiver: WebhookReceiver, instance_id: str, event: str) -> bool:
    return event in events_of(receiver, instance_id)


def novita_ids(simulator_http: httpx.Client) -> set[str]:
    listing = simulator_http.get("/gpu/instances", params={"pageSize": 100}).json()
    return {item["id"] for item in listing["instances"] if item["status"] != "removed"}


def test_every_delete_accepted_right_after_a_stop_takes_effect(
    database_url, simulator, simulator_http, make_service, webhook_receiver
) -> None:
    """The landed bug: with 16 instances in parallel, stop then delete (both 202) mostly ended
    `stopped`, the delete silently dropped and the instance left on Novita."""
    service = make_service(simulator.base_url, database_url, WEBHOOK_URL=webhook_receiver.url)
    n = 16
    ids = []
    for index in range(n):
        response = create(service, name=f"lost-delete-{index}")
        assert response.status_code == 201, response.text
        ids.append(response.json()["instanceId"])
    novita = {iid: wait_status(service, iid, "running", 60)["novitaInstanceId"] for iid in ids}

    def stop_then_delete(instance_id: str) -> tuple[int, int]:
        stop = operate(service, instance_id, "stop")
        delete = operate(service, instance_id, "delete")
        assert delete.json()["requestSeq"] == stop.json()["requestSeq"] + 1
        return stop.status_code, delete.status_code

    with ThreadPoolExecutor(n) as pool:
        answers = list(pool.map(stop_then_delete, ids))
    assert answers == [(202, 202)] * n

    for iid in ids:
        assert wait_status(service, iid, "deleted", 60)["status"] == "deleted"
        ops = wait_for(partial(settled, service, iid), 30, f"settled requests of {iid}")
        assert [op["operation"] for op in ops] == ["stop", "delete"]
        stop, delete = ops
        assert delete["state"] == "succeeded"
        # the stop either finished before the delete came or was superseded by it
        assert stop["state"] in ("succeeded", "superseded"), stop
        if stop["state"] == "superseded":
            assert stop["reason"] == f"superseded by delete #{delete['seq']}"
        assert all(op["resolvedAt"] for op in ops)
    assert not novita_ids(simulator_http) & set(novita.values())  # nothing left to pay for
    for iid in ids:
        wait_for(partial(notified, webhook_receiver, iid, "instance.deleted"), 20, iid)
        assert events_of(webhook_receiver, iid).count("instance.deleted") == 1


def test_stop_then_start_runs_both_in_order_as_a_restart(
    simulator, make_service, webhook_receiver
) -> None:
    service = make_service(simulator.base_url, WEBHOOK_URL=webhook_receiver.url)
    iid = create(service, name="restart-1").json()["instanceId"]
    wait_status(service, iid, "running")
    assert operate(service, iid, "stop").status_code == 202
    start = operate(service, iid, "start")
    assert start.status_code == 202, start.text
    assert start.json()["requestSeq"] == 2
    ops = wait_for(lambda: settled(service, iid), 30, "both requests done")
    assert [(op["operation"], op["state"]) for op in ops] == [
        ("stop", "succeeded"),
        ("start", "succeeded"),
    ]
    assert get(service, iid)["status"] == "running"
    wait_for(lambda: events_of(webhook_receiver, iid).count("instance.running") == 2, 10)
    assert events_of(webhook_receiver, iid) == [
        "instance.running",
        "instance.stopped",
        "instance.running",
    ]


def test_a_stop_supersedes_a_start_under_way_and_is_recorded(simulator, make_service) -> None:
    service = make_service(simulator.base_url)
    iid = create(service, name="supersede-1").json()["instanceId"]
    wait_status(service, iid, "running")
    assert operate(service, iid, "stop").status_code == 202
    wait_status(service, iid, "stopped")
    # Real time upstream while the start is under way, so that it cannot reach running before
    # the stop below arrives (at the tests' time scale a start takes well under a second).
    simulator.control.set_config(time_scale=1.0)
    assert operate(service, iid, "start").status_code == 202
    wait_status(service, iid, "starting")
    assert operate(service, iid, "stop").status_code == 202
    simulator.control.advance_clock(300)  # the start's plan ends, then the stop's goes fast
    simulator.control.set_config(time_scale=TEST_TIME_SCALE)
    ops = wait_for(lambda: settled(service, iid), 30, "requests done")
    assert [(op["operation"], op["state"], op["reason"]) for op in ops] == [
        ("stop", "succeeded", None),
        ("start", "superseded", "superseded by stop #3"),
        ("stop", "succeeded", None),
    ]
    assert wait_status(service, iid, "stopped")["novitaStatus"] == "exited"


def test_a_refusal_answers_409_and_records_nothing(simulator, make_service) -> None:
    service = make_service(simulator.base_url)
    iid = create(service, name="refused-1").json()["instanceId"]
    wait_status(service, iid, "running")
    refused = operate(service, iid, "start")
    assert refused.status_code == 409
    assert "running" in refused.json()["error"]["message"]
    assert operations(service, iid) == []
    assert operate(service, iid, "delete").status_code == 202
    after_delete = operate(service, iid, "stop")
    assert after_delete.status_code == 409
    # Refused as being deleted, or as deleted when the pipeline finished the delete first.
    message = after_delete.json()["error"]["message"]
    assert "being deleted" in message or "instance that is deleted" in message
    repeated = operate(service, iid, "delete")  # joins the first, unless it already finished
    ops = wait_for(lambda: settled(service, iid), 30, "deletes done")
    if repeated.status_code == 202:
        assert [(op["seq"], op["state"]) for op in ops] == [(1, "succeeded"), (2, "succeeded")]
        assert [op["joins"] for op in ops] == [None, 1]
    else:
        assert repeated.status_code == 409
        assert "deleted" in repeated.json()["error"]["message"]
        assert [(op["seq"], op["state"]) for op in ops] == [(1, "succeeded")]


def test_operations_of_an_unknown_instance_is_404(simulator, make_service) -> None:
    service = make_service(simulator.base_url)
    response = httpx.get(f"{service.base_url}/api/instances/nope/operations", timeout=5)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "INSTANCE_NOT_FOUND"
