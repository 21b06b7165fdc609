"""HTTP clients: the client process's CPU per request, http1.py beside well-kept libraries.

Usage: python -m bench.http_clients [--requests 5000] [--concurrency 8] [--rounds 5]
       [--loop uvloop|asyncio] [--write-docs]

Why: `novita_manager/http1.py` is a hand-written httpx transport; the project writes by hand only
what no well-kept library does well. This measures, in one run, what a request costs the process
that sends it with: httpx's default transport (httpcore over anyio, h11), httpx over Http1Transport
as the service builds it (`upstream_transport` for Novita, `guarded_transport` for webhooks), httpx
over httpx-aiohttp's `AiohttpTransport`, and aiohttp's ClientSession alone. Two more rows call the
transports' `handle_async_request` directly, the path `NovitaSession._send` takes.

Two requests: the GET of one instance as the Novita client sends it (to the simulator, a separate
process) and a webhook-like POST of a 1 KiB JSON body (to a receiver in a separate process: uvicorn
answering 200. Not tests/fixtures' WebhookReceiver: its listening socket is made without
IPPROTO_TCP, so asyncio does not set TCP_NODELAY on what it accepts, and its two-part answers wait
for the client's delayed ACK, about 44 ms each, which bounds any client to ~170 requests/s).
The benchmark process runs nothing but the client under test while it is measured
(time.process_time: every thread of this process). The requests are split in rounds and the
clients take turns within each round, in a rotating order, so machine noise falls on all.

Before measuring, a check of how each httpx transport reports three failures, read the way
`novita/session.py` reads them (a create that may have reached Novita must never be re-sent).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib.metadata
import multiprocessing
import socket
import statistics
import struct
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import httpx
import orjson
from httpx_aiohttp import AiohttpTransport

from bench.common import machine, simulator_process, today, write_section
from novita_manager.http1 import Http1Transport
from novita_manager.novita.session import _transport_error
from novita_manager.simulator.server import free_port
from novita_manager.upstream_transport import upstream_transport
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


def httpx_client(
    target: Target,
    kind: str,
    make: Callable[[str], httpx.AsyncBaseTransport] | None,
    concurrency: int,
) -> tuple[Send, Callable[[], Awaitable[None]]]:
    """httpx.AsyncClient over `make(kind)` (None: its default transport)."""
    limits = httpx.Limits(
        max_connections=concurrency,
        max_keepalive_connections=concurrency,
        keepalive_expiry=KEEPALIVE,
    )
    transport = make(kind) if make else None
    client = httpx.AsyncClient(
        timeout=httpx.Timeout(10),
        transport=transport,
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


def direct(
    target: Target, kind: str, transport: httpx.AsyncBaseTransport
) -> tuple[Send, Callable[[], Awaitable[None]]]:
    """The transport's handle_async_request, the way NovitaSession._send calls it."""
    extensions = {"timeout": httpx.Timeout(10).as_dict()}
    headers = httpx.AsyncClient(headers=target.headers).headers  # with httpx's defaults, as _send

    async def send() -> int:
        if kind == "GET":
            request = httpx.Request(
                "GET",
                target.get_url + "/gpu/instance",
                params=target.params,
                headers=headers,
                extensions=extensions,
            )
        else:
            request = httpx.Request(
                "POST",
                target.hook_url,
                content=target.body,
                headers=HOOK_HEADERS,
                extensions=extensions,
            )
        response = await transport.handle_async_request(request)
        try:
            await response.aread()
        finally:
            await response.aclose()
        return response.status_code

    return send, transport.aclose


def aiohttp_client(
    target: Target, kind: str, concurrency: int
) -> tuple[Send, Callable[[], Awaitable[None]]]:
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


def service_transport(
    target: Target, concurrency: int
) -> Callable[[str], httpx.AsyncBaseTransport]:
    """Http1Transport as the service builds it: the session's for Novita, the sender's for hooks."""

    def make(kind: str) -> httpx.AsyncBaseTransport:
        if kind == "GET":
            transport = upstream_transport(
                target.get_url, max_connections=concurrency, keepalive_expiry=KEEPALIVE
            )
            assert isinstance(transport, Http1Transport), "a proxy is set in the environment"
            return transport
        return guarded_transport(allow_private=True)

    return make


def aiohttp_transport(concurrency: int) -> Callable[[str], httpx.AsyncBaseTransport]:
    limits = httpx.Limits(max_connections=concurrency, keepalive_expiry=KEEPALIVE)
    return lambda _kind: AiohttpTransport(trust_env=False, limits=limits)


def clients(target: Target, c: int) -> dict[str, Callable[[str], tuple[Send, Any]]]:
    """The clients measured, by the name in the table; (b) is the reference."""
    http1, aio = service_transport(target, c), aiohttp_transport(c)
    return {
        "(a) httpx, default transport (httpcore)": lambda k: httpx_client(target, k, None, c),
        "(b) httpx over Http1Transport (the service's)": lambda k: httpx_client(
            target, k, http1, c
        ),
        "(c) httpx over httpx-aiohttp's AiohttpTransport": lambda k: httpx_client(
            target, k, aio, c
        ),
        "(d) aiohttp.ClientSession alone": lambda k: aiohttp_client(target, k, c),
        "(b') Http1Transport called directly": lambda k: direct(target, k, http1(k)),
        "(c') AiohttpTransport called directly": lambda k: direct(target, k, aio(k)),
    }


# -- measuring ---------------------------------------------------------------------------------


async def block(send: Send, requests: int, concurrency: int) -> tuple[float, float]:
    """`requests` sends by `concurrency` workers, after a few unmeasured ones that open the
    connections: (CPU seconds of this process, wall seconds)."""

    async def worker(left: Iterator[int]) -> None:
        for _ in left:
            status = await send()
            if status != 200:
                raise RuntimeError(f"HTTP {status}")

    warm = iter(range(concurrency * 4))
    await asyncio.gather(*(worker(warm) for _ in range(concurrency)))
    gc.collect()
    left = iter(range(requests))
    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker(left) for _ in range(concurrency)))
    return time.process_time() - cpu, time.perf_counter() - wall


async def measure(target: Target, args: argparse.Namespace) -> dict[tuple[str, str], Tally]:
    made = clients(target, args.concurrency)
    names = list(made)
    tallies = {(name, kind): Tally() for name in names for kind in ("GET", "POST")}
    per_round = args.requests // args.rounds
    for index in range(args.rounds):
        turn = index % len(names)
        for name in names[turn:] + names[:turn]:
            for kind in ("GET", "POST"):
                send, close = made[name](kind)
                cpu, wall = await block(send, per_round, args.concurrency)
                await close()
                tally = tallies[(name, kind)]
                tally.cpu, tally.wall, tally.requests = (
                    tally.cpu + cpu,
                    tally.wall + wall,
                    tally.requests + per_round,
                )
                tally.rounds.append(cpu / per_round * 1e6)
        print(f"round {index + 1}/{args.rounds} done", file=sys.stderr)
    return tallies


# -- how each transport reports failures -------------------------------------------------------


async def failure_readings() -> list[tuple[str, str, str]]:
    """(case, transport, httpx error, the session's reading) for three failures of a create."""

    async def close_after_head(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.close()

    async def reset_after_head(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()  # with SO_LINGER 0: an RST

    makers: dict[str, Callable[[], httpx.AsyncBaseTransport]] = {
        "httpx default": httpx.AsyncHTTPTransport,
        "Http1Transport": Http1Transport,
        "AiohttpTransport": lambda: AiohttpTransport(trust_env=False),
    }
    rows = []
    cases: list[tuple[str, Any, bool]] = [
        ("server read the request, closed without answering", close_after_head, True),
        ("server read the request, reset the connection", reset_after_head, True),
        ("nothing listens (connection refused)", None, False),
    ]
    for case, handler, reached in cases:
        server = await asyncio.start_server(handler, "127.0.0.1", 0) if handler else None
        port = server.sockets[0].getsockname()[1] if server else 1
        for name, make in makers.items():
            async with httpx.AsyncClient(transport=make(), timeout=5) as client:
                try:
                    await client.post(f"http://127.0.0.1:{port}/gpu/instance/create", json={})
                    reading = "no error"
                except httpx.TransportError as error:
                    sent = _transport_error(error, "POST /gpu/instance/create").request_sent
                    verdict = "right" if sent == reached else "WRONG"
                    said = "may have been sent" if sent else "never sent"
                    reading = f"{type(error).__name__}: {said} ({verdict})"
            rows.append((case, name, reading))
        if server:
            server.close()
    return rows


# -- the run -----------------------------------------------------------------------------------


async def _hook_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The receiver: reads the body, answers 200 `ok`."""
    if scope["type"] != "http":
        return
    more = True
    while more:
        more = (await receive()).get("more_body", False)
    headers = [(b"content-type", b"text/plain"), (b"content-length", b"2")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b"ok"})


def _receiver(port: int, stop: Any) -> None:
    """uvicorn serving `_hook_app` in this (child) process until `stop` is set."""
    import threading

    import uvicorn

    config = uvicorn.Config(_hook_app, host="127.0.0.1", port=port, http="httptools",
                            log_level="warning", access_log=False, lifespan="off")  # fmt: skip
    server = uvicorn.Server(config)

    def stopper() -> None:
        stop.wait()
        server.should_exit = True

    threading.Thread(target=stopper, daemon=True).start()
    server.run()


def _wait_ready(url: str) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.post(url, content=b"{}").status_code == 200:
                return
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
        time.sleep(0.1)


def versions() -> str:
    names = ("httpx", "httpcore", "httptools", "aiohttp", "httpx-aiohttp", "uvloop")
    return ", ".join(f"{name} {importlib.metadata.version(name)}" for name in names)


def report(
    tallies: dict[tuple[str, str], Tally],
    failures: list[Any],
    args: argparse.Namespace,
    loop_name: str,
) -> str:
    ref = "(b) httpx over Http1Transport (the service's)"
    lines = [
        f"Command: `python -m bench.http_clients --requests {args.requests} --concurrency "
        f"{args.concurrency} --rounds {args.rounds} --loop {args.loop}`; {today()}; {machine()}; "
        f"event loop {loop_name}; {versions()}.",
        "",
        "CPU of the client process only (time.process_time), per request; the servers (simulator, "
        "receiver) run in other processes and are not counted. The project's floor "
        "(`GET /health/live` of the service) does not apply here: this is client CPU. Requests/s "
        "share 2 cores with the server, so they are bounded by it; the CPU figures are what "
        "carries over. Range: lowest and highest round.",
        "",
        "| client | GET µs/req (range) | GET req/s | GET vs (b) | POST 1 KiB µs/req (range) "
        "| POST req/s | POST vs (b) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    names = list(dict.fromkeys(name for name, _ in tallies))
    for name in names:
        cells = [name]
        for kind in ("GET", "POST"):
            tally, base = tallies[(name, kind)], tallies[(ref, kind)]
            cells += [
                f"{tally.cpu_us:.0f} ({min(tally.rounds):.0f}-{max(tally.rounds):.0f})",
                f"{tally.rate:,.0f}",
                f"{tally.cpu_us / base.cpu_us:.2f}x",
            ]
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        "How each httpx transport reports a failed create (read as `novita/session.py` "
        "reads it: ConnectError/ConnectTimeout/PoolTimeout mean never sent):",
        "",
        "| failure | transport | error and the session's reading |",
        "| --- | --- | --- |",
    ]
    lines += [f"| {case} | {name} | {reading} |" for case, name, reading in failures]
    return "\n".join(lines)


async def run(args: argparse.Namespace) -> tuple[dict[tuple[str, str], Tally], list[Any]]:
    failures = await failure_readings()
    ctx = multiprocessing.get_context("spawn")
    port, stop = free_port(), ctx.Event()
    receiver = ctx.Process(target=_receiver, args=(port, stop), daemon=True)
    receiver.start()
    try:
        _wait_ready(f"http://127.0.0.1:{port}/hook")
        with simulator_process(time_scale=1.0) as sim:
            with httpx.Client(base_url=sim.v1_url, headers=sim.auth_headers) as setup:
                instance_id = setup.post("/gpu/instance/create", json=CREATE).json()["id"]
            target = Target(
                get_url=sim.v1_url,
                params={"instanceId": instance_id},
                headers={
                    "Authorization": f"Bearer {sim.api_key}",
                    "Content-Type": "application/json",
                    "Accept": "application/json",
                },
                hook_url=f"http://127.0.0.1:{port}/hook",
            )
            return await measure(target, args), failures
    finally:
        stop.set()
        receiver.join(timeout=15)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=5000, help="per client and request kind")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--loop",
        choices=("uvloop", "asyncio"),
        default="uvloop",
        help="uvloop: what uvicorn runs the service on",
    )
    parser.add_argument("--write-docs", action="store_true")
    args = parser.parse_args()
    factory = None
    if args.loop == "uvloop":
        import uvloop

        factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        loop_name = type(runner.get_loop()).__module__.split(".")[0]
        tallies, failures = runner.run(run(args))
    text = report(tallies, failures, args, loop_name)
    print(text)
    spread = {k: statistics.pstdev(t.rounds) for k, t in tallies.items()}
    print(f"(stdev of the rounds, µs: {max(spread.values()):.0f} at most)", file=sys.stderr)
    if args.write_docs:
        write_section("http-clients", "## HTTP clients: CPU per request\n\n" + text)


if __name__ == "__main__":
    main()
