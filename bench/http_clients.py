"""HTTP clients: the client process's CPU per request, the service's aiohttp path beside
aiohttp alone and httpx.

Usage: python -m bench.http_clients [--requests 5000] [--concurrency 8] [--rounds 5]
       [--loop uvloop|asyncio] [--write-docs]

Why: Novita calls and webhook deliveries go through `novita_manager/http_client.py` (aiohttp's
ClientSession under small own Request/Response types, an error classification and an idle-socket
probe). It replaced a hand-written httpx transport (`http1.py`) because aiohttp alone measured
cheaper; this measures, in one run, what a request costs the process that sends it with: httpx's
default transport (httpcore over anyio, h11; the well-known reference), aiohttp's ClientSession
alone (the floor of the library), `HttpTransport.send` as the service builds and calls it
(`upstream_transport` for Novita, `guarded_transport` for webhooks), and the whole call
(`NovitaClient.get_instance`, `WebhookSender.send`).

Two requests: the GET of one instance as the Novita client sends it (to the simulator, a separate
process) and a webhook-like POST of a 1 KiB JSON body (to a receiver in a separate process: uvicorn
answering 200. Not tests/fixtures' WebhookReceiver: its listening socket is made without
IPPROTO_TCP, so asyncio does not set TCP_NODELAY on what it accepts, and its two-part answers wait
for the client's delayed ACK, about 44 ms each, which bounds any client to ~170 requests/s).
The benchmark process runs nothing but the client under test while it is measured
(time.process_time: every thread of this process). The requests are split in rounds and the
clients take turns within each round, in a rotating order, so machine noise falls on all.

Before measuring, a check of how the service's transport reports failures of a create, read the
way `novita/session.py` reads them (a create that may have reached Novita must never be re-sent).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib.metadata
import multiprocessing
import statistics
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx

from bench.common import machine, simulator_process, today, write_section
from bench.http_client_kinds import (
    CREATE,
    RECORDED,
    REF,
    Send,
    Tally,
    Target,
    clients,
)
from bench.http_failures import failure_readings
from novita_manager.logging import configure_logging
from novita_manager.simulator.server import free_port

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
    names = ("httpx", "httpcore", "aiohttp", "yarl", "multidict", "uvloop")
    return ", ".join(f"{name} {importlib.metadata.version(name)}" for name in names)


def report(
    tallies: dict[tuple[str, str], Tally],
    failures: list[Any],
    args: argparse.Namespace,
    loop_name: str,
) -> str:
    lines = [
        f"Command: `python -m bench.http_clients --requests {args.requests} --concurrency "
        f"{args.concurrency} --rounds {args.rounds} --loop {args.loop}`; {today()}; {machine()}; "
        f"event loop {loop_name}; {versions()}.",
        "",
        "CPU of the client process only (time.process_time), per request; the servers (simulator, "
        "receiver) run in other processes and are not counted. The project's floor "
        "(`GET /health/live` of the service) does not apply here: this is client CPU; the "
        "reference is aiohttp alone, (d), in the same run. Requests/s share 2 cores with the "
        "server, so they are bounded by it; the CPU figures are what carries over. Range: lowest "
        "and highest round.",
        "",
        "| client | GET µs/req (range) | GET req/s | GET vs (d) | POST 1 KiB µs/req (range) "
        "| POST req/s | POST vs (d) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    names = list(dict.fromkeys(name for name, _ in tallies))
    for name in names:
        cells = [name]
        for kind in ("GET", "POST"):
            tally, base = tallies[(name, kind)], tallies[(REF, kind)]
            cells += [
                f"{tally.cpu_us:.0f} ({min(tally.rounds):.0f}-{max(tally.rounds):.0f})",
                f"{tally.rate:,.0f}",
                f"{tally.cpu_us / base.cpu_us:.2f}x",
            ]
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        RECORDED,
        "",
        "How the service's transport reports a failed create (aiohttp's error → the transport's, "
        "read as `novita/session.py` reads it: only a failure before any byte was written means "
        "never sent):",
        "",
        "| failure | error and the session's reading |",
        "| --- | --- |",
    ]
    lines += [f"| {case} | {reading} |" for case, reading in failures]
    return "\n".join(lines)


async def run(args: argparse.Namespace) -> tuple[dict[tuple[str, str], Tally], list[Any]]:
    configure_logging("warning", "json")  # the client's per-call debug lines stay off
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
