"""Shared helpers of the whole-system benchmarks: processes, /proc readings, load, docs sections.

The service and the simulator run as separate processes on 127.0.0.1 (so what is measured is
the service alone); the benchmark process hosts the webhook receiver and the HTTP clients.
Readings come from /proc (no psutil dependency): CPU time from `stat`, RSS and its peak
(`VmHWM`) from `status`.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import gc
import multiprocessing
import os
import platform
import queue
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from tests.fixtures.service import ServiceProcess
from tests.fixtures.webhook_receiver import WebhookReceiver

from novita_manager.simulator.config import SimulatorConfig
from novita_manager.simulator.server import SimulatorProcess

DOCS = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"
CLK_TCK = os.sysconf("SC_CLK_TCK")

# The service's configuration in the benchmarks: scaled-down timings, quiet logs.
BENCH_ENV = {
    "INSTANCE_STARTUP_TIMEOUT": "600",
    "REQUEST_TIMEOUT": "10",
    "RETRY_BACKOFF_BASE": "0.05",
    "MAX_RETRY_ATTEMPTS": "3",
    "CIRCUIT_RESET_TIMEOUT": "1",
    "WEBHOOK_RETRY_BASE": "0.1",
    "WEBHOOK_TIMEOUT": "5",
    "WEBHOOK_ALLOW_PRIVATE": "true",
    "LEASE_SECONDS": "10",
    "CACHE_TTL": "300",
    "LOG_LEVEL": "warning",
}


# -- the machine and the docs ----------------------------------------------------------------


def machine() -> str:
    """`2 cores, 24 GiB, Linux 6.x, Python 3.11.7` for the results table."""
    mem_kib = 0
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
    return (
        f"{os.cpu_count()} cores (nproc {len(os.sched_getaffinity(0))}), "
        f"{mem_kib / 1024 / 1024:.0f} GiB, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}"
    )


def today() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")


def write_section(name: str, body: str) -> None:
    """Replace the text between `<!-- name:start -->` and `<!-- name:end -->` (or append it)."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    section = f"{start}\n{body.strip()}\n{end}"
    text = DOCS.read_text() if DOCS.exists() else "# Benchmarks\n"
    if start in text and end in text:
        before, rest = text.split(start, 1)
        text = before + section + rest.split(end, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    DOCS.write_text(text)


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0..100), nearest rank; NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


def fmt_ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


# -- process readings ------------------------------------------------------------------------


def process_tree(pid: int) -> list[int]:
    """The process and its descendants: `serve` runs its pipelines in a child process
    (cli/pipeline_worker.py), and the service's CPU and memory are those of both."""
    found = [pid]
    for current in found:
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{current}/task").iterdir():
                found.extend(int(c) for c in (task / "children").read_text().split())
    return found


def cpu_seconds(pid: int, *, tree: bool = True) -> float:
    """User + system CPU seconds of a process and its descendants (fields 14 and 15 of
    /proc/<pid>/stat); with tree=False of the process alone (e.g. the API beside its child)."""
    total = 0
    for member in process_tree(pid) if tree else [pid]:
        with contextlib.suppress(OSError):  # a child that just ended
            raw = Path(f"/proc/{member}/stat").read_text()
            fields = raw.rsplit(")", 1)[1].split()  # the command name may contain spaces
            total += int(fields[11]) + int(fields[12])
    return total / CLK_TCK


def memory_kib(pid: int, *, tree: bool = True) -> dict[str, int]:
    """`VmRSS` and `VmHWM` (peak RSS) of a process and its descendants, in KiB, summed (the
    peaks of different processes need not coincide, so that sum is an upper bound; the pages a
    forked child still shares with its parent count twice), and `Pss`, the proportional set
    size summed, in which shared pages count once."""
    found: dict[str, int] = {"VmRSS": 0, "VmHWM": 0, "Pss": 0}
    for member in process_tree(pid) if tree else [pid]:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{member}/status").read_text().splitlines():
                key, _, value = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    found[key] += int(value.split()[0])
            for line in Path(f"/proc/{member}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    found["Pss"] += int(line.split()[1])
    return found


# -- processes -------------------------------------------------------------------------------


@contextlib.contextmanager
def simulator_process(time_scale: float, seed: int = 1) -> Iterator[SimulatorProcess]:
    with SimulatorProcess(SimulatorConfig(seed=seed, time_scale=time_scale)) as sim:
        yield sim


@contextlib.contextmanager
def database(kind: str) -> Iterator[str]:
    """A DATABASE_URL: SQLite in a temp dir, or a throwaway PostgreSQL server's database."""
    if kind == "sqlite":
        with tempfile.TemporaryDirectory(prefix="nm-bench-") as folder:
            yield f"sqlite+aiosqlite:///{folder}/bench.db"
        return
    from tests.fixtures.postgres import PostgresServer, find_bindir

    bindir = find_bindir()
    if bindir is None:
        raise SystemExit("PostgreSQL not installed: apt-get install postgresql")
    server = PostgresServer(bindir).start()
    try:
        name = asyncio.run(server.create_database())
        yield server.url(name)
    finally:
        server.stop()


def postgres_pid(url: str) -> int | None:
    """The pid of the throwaway PostgreSQL server behind `url` (from `database`), found by its
    port in the `postmaster.pid` of its data directory; None for SQLite or when not found."""
    if not url.startswith("postgresql"):
        return None
    port = url.rsplit(":", 1)[1].split("/", 1)[0]
    for pid_file in Path(tempfile.gettempdir()).glob("nm-pg-*/data/postmaster.pid"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            lines = pid_file.read_text().splitlines()
            if lines[3].strip() == port:
                return int(lines[0])
    return None


def service_process(env: dict[str, str], log_dir: Path, name: str = "service") -> ServiceProcess:
    """`novita-manager serve` as a child process (not started yet); its log goes to log_dir."""
    return ServiceProcess({**BENCH_ENV, **env}, log_dir / f"{name}.log")


@dataclass
class Stack:
    """What a benchmark runs against: a simulator process, a fresh database, a started service,
    and (with `webhooks=True`) the receiver its webhooks go to. `errors`: the error lines of the
    service's log, filled when the stack stops."""

    sim: SimulatorProcess
    database_url: str
    service: ServiceProcess
    receiver: WebhookReceiver | None
    errors: list[str] = field(default_factory=list)


@contextlib.contextmanager
def stack_on_simulator(
    database_kind: str,
    poll_interval: float,
    time_scale: float = 0.01,
    *,
    webhooks: bool = False,
    env: dict[str, str] | None = None,
) -> Iterator[Stack]:
    """A started service on its own database against a simulator process; all stopped after,
    the service's log error lines collected (the last five printed)."""
    with contextlib.ExitStack() as exits:
        receiver = None
        if webhooks:
            receiver = WebhookReceiver()
            receiver.start()
            exits.callback(receiver.stop)
        sim = exits.enter_context(simulator_process(time_scale))
        url = exits.enter_context(database(database_kind))
        logs = Path(exits.enter_context(tempfile.TemporaryDirectory(prefix="nm-bench-logs-")))
        service_env = {
            "NOVITA_API_BASE_URL": sim.base_url,
            "DATABASE_URL": url,
            "INSTANCE_POLL_INTERVAL": str(poll_interval),
            **({"WEBHOOK_URL": receiver.url} if receiver is not None else {}),
            **(env or {}),
        }
        service = service_process(service_env, logs).start()
        stack = Stack(sim, url, service, receiver)
        try:
            yield stack
        finally:
            service.stop()
            log = (logs / "service.log").read_text(errors="replace")
            stack.errors += [line for line in log.splitlines() if '"error"' in line]
            if stack.errors:
                print(f"{len(stack.errors)} error lines in the service log, last:", file=sys.stderr)
                print("\n".join(stack.errors[-5:]), file=sys.stderr)


@contextlib.contextmanager
def service_on_simulator(
    database_kind: str, poll_interval: float, time_scale: float = 0.01, **env: str
) -> Iterator[ServiceProcess]:
    """A started service on its own database, against a simulator process; stopped after."""
    with stack_on_simulator(database_kind, poll_interval, time_scale, env=env) as stack:
        yield stack.service


def service_pid(service: ServiceProcess) -> int:
    assert service.process is not None
    return service.process.pid


# -- load ------------------------------------------------------------------------------------


def steady_collector() -> None:
    """Keep this benchmark process's garbage collector from pausing it while it measures.

    A process that times requests or arrivals must not stall on its own account: holding
    100,000-160,000 objects, the GET load process's full collections took 60-96 ms and the
    benchmark process's 70-190 ms (a `gc.callbacks` probe on `bench.lifecycle` with PostgreSQL,
    2026-12-03), and a send scheduled during one counted the pause as the service's latency:
    at 300 GETs/s one such pause is a p99 of tens of milliseconds. What exists now is frozen
    (never examined again) and automatic collection is off; reference counting still frees
    almost everything, and the few cycles left are freed when the run's process exits."""
    gc.freeze()
    gc.disable()


class RateLoad:
    """GETs at a fixed rate from a separate process (open loop), so the benchmark's own event
    loop (POSTs, webhook receiver) cannot slow the load down or inflate its latencies.

    The child speaks plain HTTP/1.1 keep-alive over `connections` sockets, opened and used once
    (unmeasured) before its first measured send; a request's latency runs from its scheduled
    send time to the end of the answer, so the time it waited for a free connection (the
    service falling behind) counts too. Feed it paths with `add()`.
    """

    def __init__(self, base_url: str, rate: float, connections: int = 32) -> None:
        if rate <= 0:
            raise SystemExit("--get-rate must be positive")
        ctx = multiprocessing.get_context("spawn")
        self._paths: Any = ctx.Queue()
        self._results: Any = ctx.Queue()
        self._stop = ctx.Event()
        host, port = base_url.removeprefix("http://").split(":")
        self._process = ctx.Process(
            target=_load_process,
            args=(host, int(port), rate, connections, self._paths, self._stop, self._results),
            daemon=True,
        )
        self.result: dict[str, Any] = {}

    def start(self) -> RateLoad:
        self._process.start()
        return self

    def add(self, path: str) -> None:
        self._paths.put(path)

    def pid(self) -> int:
        """The generator's process (its CPU is part of what the machine carries)."""
        assert self._process.pid is not None
        return self._process.pid

    def stop(self) -> dict[str, Any]:
        self._stop.set()
        self.result = self._results.get(timeout=600)
        self._process.join(timeout=30)
        return self.result


def _load_process(host: str, port: int, rate: float, connections: int, paths_q: Any,
                  stop: Any, results: Any) -> None:  # fmt: skip
    # uvloop (installed with uvicorn[standard]) halves the generator's own CPU per request, which
    # the machine's cores carry beside the service.
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover - uvicorn[standard] brings it
        pass
    steady_collector()
    results.put(asyncio.run(_load(host, port, rate, connections, paths_q, stop)))


async def _load(host: str, port: int, rate: float, connections: int, paths_q: Any,
                stop: Any) -> dict[str, Any]:  # fmt: skip
    paths: list[str] = []
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    by_status: dict[int, list[float]] = {}
    errors = late = 0
    free: asyncio.Queue[Any] = asyncio.Queue()

    async def exchange(conn: Any, path: str) -> int:
        if conn is None:
            conn = await asyncio.open_connection(host, port)
        reader, writer = conn
        writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        await reader.readexactly(length)
        free.put_nowait(conn)
        return int(head.split(b" ", 2)[1])

    async def one(path: str, scheduled: float) -> None:
        nonlocal errors
        conn = await free.get()
        for attempt in range(2):  # a kept-alive socket the server closed: reconnect once
            try:
                status = await exchange(conn, path)
                break
            except (OSError, asyncio.IncompleteReadError, ValueError):
                conn = None
                if attempt:
                    errors += 1
                    free.put_nowait(None)
                    return
        latencies.append(time.perf_counter() - scheduled)
        by_status.setdefault(status, []).append(latencies[-1])
        statuses[status] = statuses.get(status, 0) + 1

    interval = 1.0 / rate
    tasks: set[asyncio.Task[None]] = set()
    start = time.perf_counter()
    sent = 0
    opened = False
    while not stop.is_set():
        with contextlib.suppress(queue.Empty):
            while True:
                paths.append(paths_q.get_nowait())
        if not paths:
            await asyncio.sleep(0.05)
            start, sent = time.perf_counter(), 0
            continue
        if not opened:
            # The pool is opened and each connection used once before the first measured send,
            # as a kept-alive client's is warm. Opened on first use, the first reads were 12 of
            # the 17 slowest of a PostgreSQL lifecycle run (37-49 ms against 16 ms for the
            # others), and opened first but unused, still 30-50 ms: a run's p99 is its slowest
            # 1 %, about 20 reads, so the first reads on fresh connections were most of it.
            async def warm() -> None:
                try:
                    await exchange(None, paths[0])  # puts its connection in `free`
                except (OSError, asyncio.IncompleteReadError, ValueError):
                    free.put_nowait(None)  # opened on first use instead

            await asyncio.gather(*(warm() for _ in range(connections)))
            opened, start = True, time.perf_counter()
        slot = start + sent * interval
        delay = slot - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        elif delay < -0.05:
            late += 1
        task = asyncio.create_task(one(paths[sent % len(paths)], slot))
        sent += 1
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    await asyncio.gather(*tasks, return_exceptions=True)
    return {
        "requests": len(latencies) + errors,
        "p50": percentile(latencies, 50),
        "p99": percentile(latencies, 99),
        "mean": statistics.fmean(latencies) if latencies else float("nan"),
        "statuses": dict(sorted(statuses.items())),
        # the same percentiles per status: answered reads apart from refused ones
        "by_status": {
            code: {"p50": percentile(values, 50), "p99": percentile(values, 99)}
            for code, values in sorted(by_status.items())
        },
        "errors": errors,
        "late": late,
    }


# -- the framework floor ---------------------------------------------------------------------


async def floor_cpu_ms(base_url: str, pid: int, requests: int = 400) -> float:
    """Service CPU ms per `GET /health/live` (routing and middleware, no work): the floor a
    figure of the same run is compared with, so that the machine's speed cancels out. The
    service's background work (the status sync) is measured over as long without requests
    just before, and subtracted."""
    limits = httpx.Limits(max_connections=4)
    async with httpx.AsyncClient(base_url=base_url, timeout=30, limits=limits) as client:
        for _ in range(20):  # warm the connections
            await client.get("/health/live")
        began, before = time.perf_counter(), cpu_seconds(pid)
        for _ in range(requests // 4):
            await asyncio.gather(*(client.get("/health/live") for _ in range(4)))
        seconds, used = time.perf_counter() - began, cpu_seconds(pid) - before
        idle_began, idle_before = time.perf_counter(), cpu_seconds(pid)
        await asyncio.sleep(max(seconds, 2.0))
        background = (cpu_seconds(pid) - idle_before) / (time.perf_counter() - idle_began)
        return max(used - background * seconds, 0.0) * 1000 / (requests // 4 * 4)
