"""The reliability scenarios at any size: chaos, crashes and replicas.

Each takes a running simulator (a `SimulatorServer` thread in the tests, a `SimulatorProcess`
in the benchmark: both offer `.base_url` and `.control`), a work folder for databases and logs,
and N; it starts the service as child processes (so it can SIGKILL them) and returns a
`Report` whose `problems()` is empty when every promise held.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import time
from pathlib import Path
from typing import Any

from tests.fixtures.service import ServiceProcess, service_env
from tests.fixtures.webhook_receiver import WebhookReceiver
from tests.reliability.harness import (
    Api,
    FlakyReceiver,
    Report,
    account_upstream,
    run_lifecycles,
    wait_delivered,
)

RUNNING, DELETED = "instance.running", "instance.deleted"
# Chaos: every endpoint fails 20% of the time with a 5xx and hangs 2% of the time past the
# client's 1 s timeout; 429 bursts with Retry-After are added while the run goes on.
CHAOS_FAULTS: list[dict[str, Any]] = [
    {"endpoint": "*", "kind": "hang", "rate": 0.02},
    {"endpoint": "*", "kind": "error", "status": 500, "rate": 0.2},
]
CHAOS_ENV = {
    "REQUEST_TIMEOUT": "1",
    "MAX_RETRY_ATTEMPTS": "3",
    # 50% of deliveries fail: 16 retries leave 1 event in 2^17 undelivered (3 would leave 1 in 16).
    "WEBHOOK_MAX_RETRIES": "16",
    "WEBHOOK_RETRY_BASE": "0.05",
    "INSTANCE_STARTUP_TIMEOUT": "120",
}
BURST_EVERY = 3.0  # seconds between 429 bursts


def _service(sim: Any, workdir: Path, name: str, database_url: str, **extra: str) -> ServiceProcess:
    """A service process; RELIABILITY_LOG_LEVEL=info keeps a full log in `workdir` to debug."""
    extra.setdefault("LOG_LEVEL", os.environ.get("RELIABILITY_LOG_LEVEL", "warning"))
    env = service_env(sim.base_url, database_url, **extra)
    return ServiceProcess(env, workdir / f"{name}.log")


def _sqlite(workdir: Path, name: str) -> str:
    return f"sqlite+aiosqlite:///{workdir}/{name}.db"


async def chaos(sim: Any, workdir: Path, n: int, *, timeout: float = 240.0) -> Report:
    """20% 5xx, 2% hangs, 429 bursts, a receiver failing half the time: all end running, every
    `instance.running` is delivered, and the API answers no 5xx but 502/503."""
    report = Report("chaos", n)
    receiver = FlakyReceiver(fail_rate=0.5, seed=n)
    receiver.start()
    service = _service(sim, workdir, "chaos", _sqlite(workdir, "chaos"),
                       WEBHOOK_URL=receiver.url, **CHAOS_ENV)  # fmt: skip
    api = Api([service.base_url], report)
    stop = asyncio.Event()
    began = time.monotonic()
    try:
        service.start()
        sim.control.set_faults(CHAOS_FAULTS)
        bursts = asyncio.create_task(_rate_limit_bursts(sim, stop, report))
        readers = asyncio.create_task(_read_while_running(api, stop))
        ids = await run_lifecycles(api, n, delete=False, timeout=timeout, prefix="chaos")
        report.undelivered = await wait_delivered(receiver.accepted, ids, (RUNNING,), 60)
        stop.set()
        await asyncio.gather(bursts, readers)
        report.seconds = time.monotonic() - began
        sim.control.clear_faults()
        report.upstream_calls = sim.control.stats()["calls"]
        account_upstream(report, sim.control.instances(), ids, expect_removed=False)
        report.deliveries = len(receiver.requests())
        report.extra["accepted_deliveries"] = len(receiver.accepted())
    finally:
        stop.set()
        await api.aclose()
        service.stop()
        receiver.stop()
    return report


async def _rate_limit_bursts(sim: Any, stop: asyncio.Event, report: Report) -> None:
    """Every BURST_EVERY s, three 429s (Retry-After 0.5 s) on the listing or on anything."""
    endpoints = ["GET /gpu/instances", "*"]
    count = 0
    while not stop.is_set():
        burst = {"endpoint": endpoints[count % 2], "kind": "rate_limit", "status": 429,
                 "retryAfter": 0.5, "times": 3}  # fmt: skip
        await asyncio.to_thread(sim.control.set_faults, [burst], False)
        count += 1
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), BURST_EVERY)
    report.extra["rate_limit_bursts"] = count


async def _read_while_running(api: Api, stop: asyncio.Event) -> None:
    """API clients reading during the run: the list, then each listed instance by id."""
    while not stop.is_set():
        listed = await api.request("GET", "/api/instances", params={"limit": 20})
        if listed.status_code == 200:
            for item in listed.json()["instances"][:10]:
                await api.request("GET", f"/api/instances/{item['id']}")
        await asyncio.sleep(0.1)


async def crashes(
    sim: Any, workdir: Path, n: int, kills: int, *, seed: int = 7, timeout: float = 300.0
) -> Report:
    """SIGKILL the service `kills` times at random moments during n create→running→delete
    lifecycles, restarting it each time: no duplicate or orphaned Novita instance, every
    `instance.running` and `instance.deleted` delivered at least once."""
    report = Report("crashes", n)
    receiver = WebhookReceiver()
    receiver.start()
    # Each restart takes 1-3 s, so 20 kills add up to more than the 30 s startup timeout of
    # the fast test settings: allow what a real deployment allows (the timeout is wall time).
    service = _service(sim, workdir, "crashes", _sqlite(workdir, "crashes"),
                       WEBHOOK_URL=receiver.url, INSTANCE_STARTUP_TIMEOUT="600")  # fmt: skip
    api = Api([service.base_url], report)
    # Slow creates, and some that commit and then fail, so kills land on creates in flight.
    sim.control.set_faults([
        {"endpoint": "POST /gpu/instance/create", "kind": "delay", "seconds": 0.2, "rate": 0.5},
        {"endpoint": "POST /gpu/instance/create", "kind": "commit_then_fail", "then": "drop",
         "rate": 0.1},
    ])  # fmt: skip
    began = time.monotonic()
    try:
        service.start()
        kills_over = asyncio.Event()
        # Creates keep arriving through the kills, and the last one waits for the last kill,
        # so every kill lands mid-lifecycles however fast they go.
        lifecycles = run_lifecycles(
            api, n, delete=True, timeout=timeout, spread=kills * 1.0, prefix="crash",
            last_after=kills_over,
        )  # fmt: skip
        work = asyncio.create_task(lifecycles)
        rng = random.Random(seed)
        done_kills = 0
        try:
            for _ in range(kills):
                await asyncio.sleep(rng.uniform(0.1, 1.2))
                if work.done():
                    break  # a create failed: `await work` below raises it
                service.kill()
                done_kills += 1
                await asyncio.to_thread(service.start)
        finally:
            kills_over.set()
        report.extra["kills"] = done_kills
        ids = await work
        sim.control.clear_faults()
        report.undelivered = await wait_delivered(receiver.requests, ids, (RUNNING, DELETED), 60)
        report.seconds = time.monotonic() - began
        report.upstream_calls = sim.control.stats()["calls"]
        account_upstream(report, sim.control.instances(), ids, expect_removed=True)
        report.deliveries = len(receiver.requests())
    finally:
        await api.aclose()
        service.stop()
        receiver.stop()
    return report


async def replicas(
    sim: Any, workdir: Path, n: int, database_url: str, *, timeout: float = 300.0
) -> Report:
    """Two service processes on one PostgreSQL database share n lifecycles; one is SIGKILLed
    when half the creates are in: all still end running, one Novita instance each."""
    report = Report("replicas", n)
    receiver = WebhookReceiver()
    receiver.start()
    services = [
        _service(
            sim,
            workdir,
            f"replica-{i}",
            database_url,
            WEBHOOK_URL=receiver.url,
            INSTANCE_STARTUP_TIMEOUT="600",
        )
        for i in range(2)
    ]
    api = Api([s.base_url for s in services], report)
    began = time.monotonic()
    try:
        for service in services:
            service.start()
        work = asyncio.create_task(
            run_lifecycles(api, n, delete=False, timeout=timeout, spread=n * 0.02, prefix="rep")
        )
        requested = 0
        while not work.done():
            listed = await api.request("GET", "/api/instances", params={"limit": 1})
            if listed.status_code == 200:
                requested = listed.json()["total"]
                if requested >= n // 2:
                    break
            await asyncio.sleep(0.05)
        services[1].kill()
        api.base_urls.remove(services[1].base_url)
        report.extra["killed_at_requests"] = requested
        ids = await work
        report.undelivered = await wait_delivered(receiver.requests, ids, (RUNNING,), 60)
        report.seconds = time.monotonic() - began
        report.upstream_calls = sim.control.stats()["calls"]
        account_upstream(report, sim.control.instances(), ids, expect_removed=False)
        report.deliveries = len(receiver.requests())
    finally:
        await api.aclose()
        for service in services:
            service.stop()
        receiver.stop()
    return report


def operations(
    sim: Any,
    workdir: Path,
    steps: int,
    *,
    database_url: str | None = None,
    database: str = "sqlite",
    step_count: int = 25,
    seed: int = 13,
    progress: Any = None,
) -> Any:
    """Random create/start/stop/delete sequences, concurrent and repeated (the hypothesis state
    machine of `operations_model.py`), against one service process; returns its
    `OperationsReport` (sync: hypothesis drives it; async callers use `asyncio.to_thread`)."""
    from tests.reliability.operations_model import Target, run_operations

    receiver = WebhookReceiver()
    receiver.start()
    url = database_url or _sqlite(workdir, "operations")
    # 600 s startup timeout: a slow, loaded machine must not turn a create into `failed`.
    service = _service(sim, workdir, "operations", url, WEBHOOK_URL=receiver.url,
                       INSTANCE_STARTUP_TIMEOUT="600")  # fmt: skip
    try:
        service.start()
        target = Target(service.base_url, url, sim, receiver)
        return run_operations(target, steps=steps, step_count=step_count, seed_value=seed,
                              database=database, tag=database[:2], progress=progress)  # fmt: skip
    finally:
        service.stop()
        receiver.stop()
