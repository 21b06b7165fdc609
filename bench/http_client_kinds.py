"""The clients `bench.http_clients` measures, and what they send (see that module)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import aiohttp
import httpx
import orjson
from yarl import URL

from novita_manager.http_client import Request
from novita_manager.novita import NovitaClient
from novita_manager.upstream_transport import upstream_transport
from novita_manager.webhooks.sender import WebhookSender
from novita_manager.webhooks.transport import guarded_transport

KEEPALIVE = 2.0  # the session's keepalive_expiry
CREATE = {
    "name": "bench",
    "productId": "A100-80GB.14c240g",
    "gpuNum": 1,
    "rootfsSize": 60,
    "imageUrl": "pytorch/pytorch:latest",
    "kind": "gpu",
    "ports": "8888/http",
}
HOOK_HEADERS = {
    "content-type": "application/json",
    "webhook-id": "msg_2kQh1b7kQ0mXo0bLq3d8cS1zZ9V",
    "webhook-timestamp": "1796205600",
    "webhook-signature": "v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4=",
    "user-agent": "novita-manager/0.1.0 (webhooks)",
}
Send = Callable[[], Awaitable[int]]


def hook_body() -> bytes:
    """A webhook-like JSON document of about 1 KiB."""
    event = {
        "type": "instance.running",
        "instanceId": "f" * 32,
        "status": "running",
        "novitaInstanceId": "a" * 16,
        "name": "bench",
        "region": "us-east",
        "occurredAt": "2026-12-02T17:00:00Z",
        "metadata": {"team": "x" * 600},
    }
    return orjson.dumps(event)


@dataclass
class Target:
    get_url: str  # the simulator's v1 root
    params: dict[str, str]
    headers: dict[str, str]  # as NovitaSession sends them
    hook_url: str
    body: bytes = field(default_factory=hook_body)


@dataclass
class Tally:
    cpu: float = 0.0
    wall: float = 0.0
    requests: int = 0
    rounds: list[float] = field(default_factory=list)  # CPU µs per request in each round

    @property
    def cpu_us(self) -> float:
        return self.cpu / self.requests * 1e6

    @property
    def rate(self) -> float:
        return self.requests / self.wall


# -- the clients -------------------------------------------------------------------------------

Close = Callable[[], Awaitable[None]]
REF = "(d) aiohttp.ClientSession alone"
RECORDED = (
    "The hand-written transport this replaced, measured by the same benchmark on 2026-12-02 "
    "17:01 UTC (uvloop, 5,000 requests, 5 rounds): `Http1Transport` called as the session called "
    "it cost 290 µs per GET and 227 µs per POST, 1.31x and 1.18x aiohttp alone (222 / 192 µs) in "
    "that run; httpx over it, the path before the session called it directly, 500 / 434 µs."
)


def httpx_client(target: Target, kind: str, concurrency: int) -> tuple[Send, Close]:
    """httpx.AsyncClient over its default transport."""
    limits = httpx.Limits(
        max_connections=concurrency,
        max_keepalive_connections=concurrency,
        keepalive_expiry=KEEPALIVE,
    )
    client = httpx.AsyncClient(
        timeout=httpx.Timeout(10),
        limits=limits,
        trust_env=False,
        follow_redirects=False,
        headers=target.headers if kind == "GET" else None,
    )
    url = target.get_url + "/gpu/instance"

    async def get() -> int:
        return (await client.get(url, params=target.params)).status_code

    async def post() -> int:
        return (
            await client.post(target.hook_url, content=target.body, headers=HOOK_HEADERS)
        ).status_code

    return (get if kind == "GET" else post), client.aclose


def aiohttp_client(target: Target, kind: str, concurrency: int) -> tuple[Send, Close]:
    """aiohttp.ClientSession alone (its C parser, its pool)."""
    connector = aiohttp.TCPConnector(limit=concurrency, keepalive_timeout=KEEPALIVE)
    session = aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=10))
    url = target.get_url + "/gpu/instance"

    async def get() -> int:
        async with session.get(url, params=target.params, headers=target.headers) as response:
            await response.read()
            return response.status

    async def post() -> int:
        async with session.post(
            target.hook_url, data=target.body, headers=HOOK_HEADERS
        ) as response:
            await response.read()
            return response.status

    return (get if kind == "GET" else post), session.close


def service_transport(target: Target, kind: str, concurrency: int) -> tuple[Send, Close]:
    """`HttpTransport.send` as the service builds it and calls it: the session's request (URL
    with its query, its headers) for Novita, the sender's (guarded, a timeout) for webhooks."""
    if kind == "GET":
        transport = upstream_transport(
            target.get_url, timeout=10, max_connections=concurrency, keepalive_expiry=KEEPALIVE
        )
        assert transport.proxy is None, "a proxy is set in the environment"
        headers = {**target.headers, "User-Agent": "novita-manager/bench"}

        async def get() -> int:
            url = URL(target.get_url + "/gpu/instance").with_query(target.params)
            return (await transport.send(Request("GET", url, headers))).status_code

        return get, transport.aclose
    hooks = guarded_transport(allow_private=True)

    async def post() -> int:
        request = Request("POST", URL(target.hook_url), HOOK_HEADERS, target.body, timeout=10)
        return (await hooks.send(request)).status_code

    return post, hooks.aclose


def whole_call(target: Target, kind: str, concurrency: int) -> tuple[Send, Close]:
    """The whole call: `NovitaClient.get_instance` (breaker, slot, metrics, log, parsing) and
    `WebhookSender.send` (URL check, guarded transport, classification)."""
    if kind == "GET":
        client = NovitaClient(
            base_url=target.get_url.removesuffix("/v1"),
            api_key=target.headers["Authorization"].removeprefix("Bearer "),
            timeout=10,
            max_concurrency=concurrency,
        )
        instance_id = target.params["instanceId"]

        async def get() -> int:
            await client.get_instance(instance_id)
            return 200

        return get, client.aclose
    sender = WebhookSender()

    async def post() -> int:
        result = await sender.send(
            target.hook_url, target.body, HOOK_HEADERS, timeout=10, allow_private=True
        )
        return result.status_code or 0

    return post, sender.aclose


def clients(target: Target, c: int) -> dict[str, Callable[[str], tuple[Send, Close]]]:
    """The clients measured, by the name in the table; (d) is the reference."""
    return {
        "(a) httpx, default transport (httpcore)": lambda k: httpx_client(target, k, c),
        REF: lambda k: aiohttp_client(target, k, c),
        "(e) HttpTransport.send, as the service calls it": lambda k: service_transport(
            target, k, c
        ),
        "(f) the whole call: NovitaClient.get_instance / WebhookSender.send": lambda k: whole_call(
            target, k, c
        ),
    }
