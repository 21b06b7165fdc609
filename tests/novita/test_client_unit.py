"""Client behaviour on exact replies, with a scripted transport standing in for the network.

The simulator tests (test_client_simulator.py) cover the same rules over real HTTP; these pin the
cases a fault injector cannot make precisely: which transport errors count as "never sent" (how
aiohttp's failures become these errors is tested over sockets in tests/test_http_client.py), exact
headers, empty action replies, a server that ignores paging.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

import pytest

from novita_manager.config import load_settings
from novita_manager.http_client import (
    ConnectError,
    ExchangeError,
    ReadTimeout,
    Request,
    Response,
)
from novita_manager.metrics import Metrics
from novita_manager.novita import (
    CircuitBreaker,
    ClientOptions,
    CreateInstanceRequest,
    NovitaBadRequest,
    NovitaClient,
    NovitaNotFound,
    NovitaOutcomeUnknown,
    NovitaRateLimited,
    NovitaServerError,
    NovitaTransportError,
    NovitaUnavailable,
)
from novita_manager.services.upstream import client_options, novita_client
from tests.fixtures.http_mock import MockTransport

Handler = Callable[[Request], Response]
REQUEST = CreateInstanceRequest(
    name="nm-1", product_id="p1", gpu_num=1, rootfs_size=60, image_url="nginx:latest"
)


class Recorder:
    def __init__(self, *replies: Response | Exception | Handler) -> None:
        self.replies = list(replies)
        self.requests: list[Request] = []

    def __call__(self, request: Request) -> Response:
        self.requests.append(request)
        reply = self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]
        if isinstance(reply, Exception):
            raise reply
        if isinstance(reply, Response):
            return reply
        return reply(request)


def make_client(recorder: Recorder, **kwargs: Any) -> NovitaClient:
    options: dict[str, Any] = {
        "base_url": "http://novita.test/gpu-instance/openapi",
        "api_key": "sk_unit_test_key",
        "timeout": 1.0,
        "max_retries": 3,
        "backoff_base": 0.001,
        "transport": MockTransport(recorder),
    }
    options.update(kwargs)
    return NovitaClient(**options)


def ok(data: Any) -> Response:
    return Response(200, json=data)


async def test_headers_base_path_and_query() -> None:
    recorder = Recorder(ok({"data": [{"id": "p1", "price": "35000"}]}))
    async with make_client(recorder) as client:
        products = await client.list_products(cluster_id="c1", gpu_num=1, billing_method="spot")
    assert products[0].price_usd == pytest.approx(0.35)
    request = recorder.requests[0]
    assert request.url.path == "/gpu-instance/openapi/v1/products"
    assert dict(request.url.query) == {"clusterId": "c1", "gpuNum": "1", "billingMethod": "spot"}
    assert request.headers["Authorization"] == "Bearer sk_unit_test_key"
    assert request.headers["Content-Type"] == "application/json"


@pytest.mark.parametrize(
    "reply",
    [
        Response(200),
        Response(200, content=b"OK"),
        Response(200, json={}),
        Response(200, json={"instanceId": "i1", "state": "toStart"}),
    ],
)
async def test_actions_do_not_depend_on_the_body(reply: Response) -> None:
    recorder = Recorder(reply)
    async with make_client(recorder) as client:
        await client.start_instance("i1")
        await client.migrate_instance("i1")
    assert [r.url.path.rsplit("/", 1)[1] for r in recorder.requests] == ["start", "migrate"]
    assert json.loads(recorder.requests[0].body or b"") == {"instanceId": "i1"}


async def test_get_retries_5xx_then_succeeds_and_counts_retries() -> None:
    metrics = Metrics()
    recorder = Recorder(Response(502), Response(500), ok({"id": "i1", "status": "x"}))
    async with make_client(recorder, metrics=metrics) as client:
        instance = await client.get_instance("i1")
    assert instance.status == "x"
    assert len(recorder.requests) == 3
    text = metrics.render().decode()
    assert 'novita_manager_upstream_retries_total{endpoint="GET /gpu/instance"} 2.0' in text
    assert 'endpoint="GET /gpu/instance",outcome="server_error"} 2.0' in text
    assert 'endpoint="GET /gpu/instance",outcome="ok"} 1.0' in text


async def test_retries_are_bounded() -> None:
    recorder = Recorder(Response(500, json={"reason": "UNKNOWN", "message": "boom"}))
    async with make_client(recorder, max_retries=2) as client:
        with pytest.raises(NovitaServerError) as caught:
            await client.list_clusters()
    assert len(recorder.requests) == 3
    assert caught.value.reason == "UNKNOWN"


async def test_4xx_is_not_retried_and_does_not_trip_the_breaker() -> None:
    breaker = CircuitBreaker(1, 60.0)
    recorder = Recorder(Response(404, json={"message": "instance not found"}))
    async with make_client(recorder, breaker=breaker) as client:
        for _ in range(3):
            with pytest.raises(NovitaNotFound):
                await client.get_instance("gone")
    assert len(recorder.requests) == 3
    assert breaker.state == "closed"


async def test_malformed_get_is_retried_then_transport_error() -> None:
    recorder = Recorder(Response(200, content=b"<html>"), ok({"nothing": True}))
    async with make_client(recorder, max_retries=1) as client:
        with pytest.raises(NovitaTransportError) as caught:
            await client.get_instance("i1")
    assert caught.value.outcome == "malformed"
    assert len(recorder.requests) == 2


async def test_long_retry_after_is_raised_not_slept_on() -> None:
    recorder = Recorder(Response(429, headers={"Retry-After": "3600"}))
    async with make_client(recorder) as client:
        with pytest.raises(NovitaRateLimited) as caught:
            await client.list_clusters()
    assert caught.value.retry_after == 3600
    assert len(recorder.requests) == 1


async def test_create_connect_error_is_retried() -> None:
    recorder = Recorder(ConnectError("refused"), ok({"id": "new1"}))
    async with make_client(recorder) as client:
        assert await client.create_instance(REQUEST) == "new1"
    assert len(recorder.requests) == 2
    assert json.loads(recorder.requests[1].body or b"")["productId"] == "p1"


async def test_create_429_is_retried() -> None:
    recorder = Recorder(Response(429, headers={"Retry-After": "0"}), ok({"id": "new1"}))
    async with make_client(recorder) as client:
        assert await client.create_instance(REQUEST) == "new1"
    assert len(recorder.requests) == 2


@pytest.mark.parametrize(
    ("reply", "outcome"),
    [
        (ReadTimeout("slow"), "timeout"),
        (ExchangeError("ServerDisconnectedError: Server disconnected"), "network_error"),
        (ExchangeError("ClientOSError: reset"), "network_error"),
        (Response(500), "server_error"),
        (Response(503, headers={"Retry-After": "0"}), "server_error"),
        (Response(200, content=b"not json"), "malformed"),
        (Response(200, json={"id": ""}), "malformed"),
    ],
)
async def test_create_with_unknown_outcome_is_sent_once(
    reply: Response | Exception, outcome: str
) -> None:
    recorder = Recorder(reply, ok({"id": "never"}))
    async with make_client(recorder) as client:
        with pytest.raises(NovitaOutcomeUnknown) as caught:
            await client.create_instance(REQUEST)
    assert len(recorder.requests) == 1
    assert caught.value.outcome == outcome


async def test_create_definite_4xx_is_typed() -> None:
    recorder = Recorder(Response(400, json={"reason": "VALIDATOR_PARAM", "message": "bad"}))
    async with make_client(recorder) as client:
        with pytest.raises(NovitaBadRequest) as caught:
            await client.create_instance(REQUEST)
    assert caught.value.reason == "VALIDATOR_PARAM"
    assert len(recorder.requests) == 1


async def test_open_circuit_fails_fast_without_sending() -> None:
    metrics = Metrics()
    breaker = CircuitBreaker(2, 60.0)
    recorder = Recorder(ConnectError("refused"))
    async with make_client(recorder, breaker=breaker, metrics=metrics, max_retries=5) as client:
        with pytest.raises(NovitaUnavailable):
            await client.list_clusters()
        assert len(recorder.requests) == 2  # the third attempt met the open circuit
        with pytest.raises(NovitaUnavailable):
            await client.get_instance("i1")
    assert len(recorder.requests) == 2
    text = metrics.render().decode()
    assert "novita_manager_circuit_state 2.0" in text
    assert 'endpoint="GET /gpu/instance",outcome="circuit_open"} 1.0' in text


async def test_the_service_client_takes_its_figures_from_the_settings() -> None:
    settings = load_settings(
        novita_api_base_url="http://127.0.0.1:1/gpu-instance/openapi",
        circuit_failure_threshold=7,
        circuit_reset_timeout=3.0,
    )
    client = novita_client(settings, Metrics())
    assert client.base_url == "http://127.0.0.1:1/gpu-instance/openapi/v1"
    assert client.breaker.failure_threshold == 7
    assert client.breaker.reset_timeout == 3.0
    assert client.breaker.state == "closed"
    await client.aclose()


def test_client_options_map_every_client_setting() -> None:
    settings = load_settings(
        novita_api_base_url="http://127.0.0.1:1/gpu-instance/openapi",
        novita_api_key="sk_mapped",
        request_timeout=7.0,
        max_retry_attempts=2,
        retry_backoff_base=0.25,
        max_concurrent_requests=9,
        upstream_rate_limit=3.5,
        circuit_failure_threshold=4,
        circuit_reset_timeout=11.0,
    )
    assert client_options(settings) == ClientOptions(
        base_url="http://127.0.0.1:1/gpu-instance/openapi",
        api_key="sk_mapped",
        timeout=7.0,
        max_retries=2,
        backoff_base=0.25,
        max_concurrency=9,
        rate_limit=3.5,
        circuit_failure_threshold=4,
        circuit_reset_timeout=11.0,
    )
    assert "sk_mapped" not in repr(client_options(settings))


async def test_503_retry_after_is_honoured() -> None:
    recorder = Recorder(Response(503, headers={"Retry-After": "0.3"}), ok({"data": []}))
    async with make_client(recorder) as client:
        started = time.perf_counter()
        assert await client.list_clusters() == []
    assert time.perf_counter() - started >= 0.3
    assert len(recorder.requests) == 2


async def test_rate_limit_spaces_calls() -> None:
    recorder = Recorder(ok({"data": []}))
    async with make_client(recorder, rate_limit=10.0) as client:
        started = time.perf_counter()
        await asyncio.gather(*(client.list_clusters() for _ in range(15)))
    assert time.perf_counter() - started >= 0.4  # a burst of 10, then 5 more at 10/s


async def test_cancelled_probe_frees_the_half_open_slot() -> None:
    clock = [0.0]
    breaker = CircuitBreaker(1, 5.0, clock=lambda: clock[0])
    breaker.record_failure()
    clock[0] = 5.0  # half-open

    async def slow(request: Request) -> Response:
        await asyncio.sleep(10)
        return ok({"data": []})

    async with make_client(Recorder(ok({"data": []})), breaker=breaker) as client:
        slow_client = make_client(Recorder(ok({})), breaker=breaker, transport=MockTransport(slow))
        probe = asyncio.create_task(slow_client.list_clusters())
        await asyncio.sleep(0.05)
        with pytest.raises(NovitaUnavailable):
            await client.list_clusters()  # the probe is in flight
        probe.cancel()
        with pytest.raises(asyncio.CancelledError):
            await probe
        assert await client.list_clusters() == []  # a new probe went through and closed it
        await slow_client.aclose()
    assert breaker.state == "closed"


async def test_an_urgent_get_instance_goes_before_calls_waiting_for_a_slot() -> None:
    """With every upstream slot taken, the details GET of a running instance (`urgent`) is sent
    before the calls that were already waiting (novita/slots.py)."""
    gate = asyncio.Event()
    paths: list[str] = []

    async def handler(request: Request) -> Response:
        paths.append(request.url.path.rsplit("/", 1)[1])
        if len(paths) == 1:
            await gate.wait()  # the only slot stays taken until every call below waits
        if request.url.path.endswith("/gpu/instance"):
            return ok({"id": "i1", "status": "running"})
        return ok({"data": []})

    async with make_client(
        Recorder(ok({})), transport=MockTransport(handler), max_concurrency=1
    ) as client:
        holder = asyncio.create_task(client.list_clusters())
        await asyncio.sleep(0.01)
        waiting = [asyncio.create_task(client.list_clusters()) for _ in range(2)]
        await asyncio.sleep(0.01)
        urgent = asyncio.create_task(client.get_instance("i1", urgent=True))
        await asyncio.sleep(0.01)
        gate.set()
        await asyncio.gather(holder, urgent, *waiting)
    assert paths == ["clusters", "instance", "clusters", "clusters"]
