"""The typed SDK: against a real service (operation requests and their log, answers that are the
API's JSON exactly), and with a fake transport (both clients send the same requests; errors)."""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from pydantic import BaseModel

from novita_manager.domain.statuses import Status
from novita_manager.sdk import (
    ApiResponseError,
    AsyncManagerClient,
    CreateInstance,
    DeliveryList,
    ManagerClient,
    OperationRequestList,
    ServiceUnreachable,
)
from tests.api.test_instances_e2e import wait_status
from tests.fixtures.waiting import wait_for


def test_sdk_requests_and_their_outcomes(simulator, make_service) -> None:
    service = make_service(simulator.base_url)
    with ManagerClient(service.base_url) as client:
        created = client.create_instance(CreateInstance("sdk-1", "RTX 4090 24GB", "1"))
        instance_id = created.instanceId
        wait_status(service, instance_id, "running")
        stop = client.stop_instance(instance_id)
        assert (stop.status, stop.requestSeq) == (Status.STOPPING, 1)
        done = wait_for(
            lambda: client.operations(instance_id).operations[0].state == "succeeded",
            what="the stop's outcome",
        )
        assert done

    async def start() -> OperationRequestList:
        async with AsyncManagerClient(service.base_url) as client:
            started = await client.start_instance(instance_id)
            assert started.requestSeq == 2
            return await client.operations(instance_id)

    log = asyncio.run(start())
    assert [op.operation for op in log.operations] == ["stop", "start"]


class Tap(httpx.BaseTransport):
    """The real transport, keeping the body of the last answer as the service sent it."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.last = b""

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        self.last = response.read()
        return response


def test_models_dump_to_exactly_the_api_json(simulator, make_service, webhook_receiver) -> None:
    """Every answer the SDK parsed, dumped in JSON mode, is the text the service sent: same keys
    (nulls included), same order, same values; so `--json` prints the API's answer."""
    service = make_service(simulator.base_url, WEBHOOK_URL=webhook_receiver.url)
    tap = Tap()

    def same_as_sent(answer: BaseModel) -> None:
        assert json.dumps(answer.model_dump(mode="json")) == json.dumps(json.loads(tap.last))

    with ManagerClient(service.base_url, transport=tap) as client:
        created = client.create_instance(CreateInstance("sdk-json", "RTX 4090 24GB", "1"))
        same_as_sent(created)
        instance_id = created.instanceId
        wait_status(service, instance_id, "running")
        wait_for(lambda: client.webhook_deliveries(instance_id).deliveries, what="a delivery")
        same_as_sent(client.webhook_deliveries(instance_id))
        same_as_sent(client.stop_instance(instance_id))
        view = client.get_instance(instance_id)
        same_as_sent(view)
        assert isinstance(view.status, Status)  # an enum member, parsed from the JSON string
        assert view.deletedAt is None
        assert "deletedAt" in view.model_dump(mode="json")
        same_as_sent(client.list_instances())
        same_as_sent(client.operations(instance_id))


class Recorder:
    """A fake service: records every request and answers 500 with an error envelope."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, dict[str, str], bytes]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        key = request.headers.get("idempotency-key")
        headers = {"idempotency-key": key} if key else {}
        self.requests.append((request.method, str(request.url), headers, request.content))
        return httpx.Response(500, json={"error": {"code": "INTERNAL", "message": "no"}})


OPERATION = {"instanceId": "i-1", "status": "stopping", "message": "ok", "requestSeq": 1}


def every_method(client: Any) -> list[Callable[[], Any]]:
    """Every method with arguments, to be called (the async client's return coroutines)."""
    return [
        lambda: client.create_instance(
            CreateInstance("n", "RTX 4090 24GB", "1", gpu_num=2), idempotency_key="k"
        ),
        lambda: client.list_instances(status="running", name="a b", limit=5, offset=10),
        lambda: client.get_instance("i/1"),
        lambda: client.start_instance("i-1", "http://hook"),
        lambda: client.stop_instance("i-1"),
        lambda: client.delete_instance("i-1", webhook_url="http://hook"),
        lambda: client.webhook_deliveries("i-1"),
        lambda: client.operations("i-1"),
    ]


def test_sync_and_async_clients_send_the_same_requests() -> None:
    sync_log, async_log = Recorder(), Recorder()
    with ManagerClient("http://svc", transport=httpx.MockTransport(sync_log)) as client:
        for call in every_method(client):
            with pytest.raises(ApiResponseError):
                call()

    async def run_async() -> None:
        transport = httpx.MockTransport(async_log)
        async with AsyncManagerClient("http://svc", transport=transport) as client:
            for call in every_method(client):
                with pytest.raises(ApiResponseError):
                    await call()

    asyncio.run(run_async())
    assert sync_log.requests == async_log.requests
    assert [request[:3] for request in sync_log.requests] == [
        ("POST", "http://svc/api/instances", {"idempotency-key": "k"}),
        ("GET", "http://svc/api/instances?limit=5&offset=10&status=running&name=a+b", {}),
        ("GET", "http://svc/api/instances/i%2F1", {}),
        ("POST", "http://svc/api/instances/i-1/start", {}),
        ("POST", "http://svc/api/instances/i-1/stop", {}),
        ("DELETE", "http://svc/api/instances/i-1", {}),
        ("GET", "http://svc/api/instances/i-1/webhooks", {}),
        ("GET", "http://svc/api/instances/i-1/operations", {}),
    ]
    bodies = [json.loads(request[3]) if request[3] else None for request in sync_log.requests]
    assert bodies[0] == {
        "name": "n",
        "productName": "RTX 4090 24GB",
        "templateId": "1",
        "gpuNum": 2,
    }
    assert bodies[3] == bodies[5] == {"webhookUrl": "http://hook"}
    assert bodies[4] is None


def test_methods_keep_their_names_and_parameters() -> None:
    for client in (ManagerClient, AsyncManagerClient):
        stop = inspect.signature(client.stop_instance)
        assert list(stop.parameters) == ["self", "instance_id", "webhook_url"]
        assert stop.parameters["webhook_url"].default is None
        assert client.list_instances.__name__ == "list_instances"
        assert client.operations.__doc__
    assert inspect.iscoroutinefunction(AsyncManagerClient.get_instance)


def test_an_answer_becomes_a_model_and_errors_stay_apart() -> None:
    def client(response: httpx.Response) -> ManagerClient:
        return ManagerClient("http://svc", transport=httpx.MockTransport(lambda _: response))

    result = client(httpx.Response(202, json=OPERATION)).stop_instance("i-1")
    assert (result.status, result.requestSeq) == (Status.STOPPING, 1)

    envelope = {"error": {"code": "INVALID_STATE", "message": "stopped", "requestId": "r-1"}}
    with pytest.raises(ApiResponseError) as refused:
        client(httpx.Response(409, json=envelope)).stop_instance("i-1")
    assert (refused.value.code, refused.value.request_id) == ("INVALID_STATE", "r-1")
    assert refused.value.body == envelope

    with pytest.raises(ApiResponseError, match="not JSON"):
        client(httpx.Response(200, text="<html>")).get_instance("i-1")

    with pytest.raises(ApiResponseError, match="unexpected answer to POST") as mismatch:
        client(httpx.Response(202, json={**OPERATION, "status": "asleep"})).stop_instance("i-1")
    assert mismatch.value.status_code == 202

    def refuse(_request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused")

    unreachable = ManagerClient("http://svc/", transport=httpx.MockTransport(refuse))
    with pytest.raises(ServiceUnreachable, match="connection refused"):
        unreachable.list_instances()


def test_deliveries_parse_into_their_model() -> None:
    body: dict[str, Any] = {"deliveries": []}
    transport = httpx.MockTransport(lambda _: httpx.Response(200, json=body))
    with ManagerClient("http://svc", transport=transport) as client:
        assert client.webhook_deliveries("i-1") == DeliveryList(deliveries=[])


def test_sdk_sends_the_spot_life_fields(simulator, make_service) -> None:
    service = make_service(simulator.base_url)
    with ManagerClient(service.base_url) as client:
        created = client.create_instance(
            CreateInstance(
                "sdk-spot",
                "RTX 4090 24GB",
                "1",
                regions=["AS-SGP-02"],
                max_price_per_hour=0.2,
                on_reclaim="recreate",
                max_recoveries=2,
            )
        )
        view = client.get_instance(created.instanceId)
        assert (view.region, created.pricePerHour) == ("AS-SGP-02", 0.19)
        assert view.recoveries == 0
