"""Simulator throughput: requests per second on `POST /gpu/instance/create` and
`GET /gpu/instances` (pageSize 100 over 1,000 instances, and over 10,000).

Usage: python -m bench.simulator_throughput [--concurrency 32] [--creates 1000]
       [--lists 3000] [--write-docs]
The simulator runs as its own process (`novita-manager simulator`), loaded by concurrent httpx
clients from this process, so on a small machine the load generator competes with it for CPU:
the numbers are a floor. --write-docs replaces this benchmark's section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import os
import platform
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.common import write_section
from novita_manager.simulator.config import SimulatorConfig
from novita_manager.simulator.server import SimulatorProcess

DOCS = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"
START, END = "<!-- simulator-throughput:start -->", "<!-- simulator-throughput:end -->"
CREATE_BODY = {
    "name": "bench",
    "productId": "A100-80GB.14c240g",
    "gpuNum": 1,
    "rootfsSize": 60,
    "imageUrl": "pytorch/pytorch:latest",
    "kind": "gpu",
    "ports": "8888/http,22/tcp",
    "envs": [{"key": "NM_BENCH", "value": "1"}],
}


def process_cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process (Linux /proc), None elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Result:
    name: str
    requests: int
    seconds: float
    latencies: list[float]
    server_cpu: float | None = None  # simulator CPU seconds spent on these requests

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    def row(self) -> str:
        if self.server_cpu:
            per_request = self.server_cpu / self.requests * 1000
            cpu = f"{per_request:.2f} | {1000 / per_request:,.0f}"
        else:
            cpu = "n/a | n/a"
        return (
            f"| {self.name} | {self.requests} | {self.rate:,.0f} | "
            f"{statistics.median(self.latencies) * 1000:.1f} | {self.percentile(0.99):.1f} | "
            f"{cpu} |"
        )


async def run(
    name: str,
    total: int,
    concurrency: int,
    client: httpx.AsyncClient,
    call: Callable[[httpx.AsyncClient, int], Awaitable[httpx.Response]],
    server_pid: int | None = None,
) -> Result:
    """`total` calls spread over `concurrency` workers; every answer must be a 200."""
    counter = iter(range(total))
    latencies: list[float] = []

    async def worker() -> None:
        for index in counter:
            began = time.perf_counter()
            reply = await call(client, index)
            latencies.append(time.perf_counter() - began)
            if reply.status_code != 200:
                raise RuntimeError(f"{name}: HTTP {reply.status_code}: {reply.text[:200]}")

    cpu_before = process_cpu_seconds(server_pid) if server_pid else None
    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    seconds = time.perf_counter() - started
    cpu_after = process_cpu_seconds(server_pid) if server_pid else None
    cpu = cpu_after - cpu_before if cpu_after is not None and cpu_before is not None else None
    return Result(name, total, seconds, latencies, cpu)


async def create(client: httpx.AsyncClient, _index: int) -> httpx.Response:
    return await client.post("/gpu/instance/create", json=CREATE_BODY)


def lister(instances: int) -> Callable[[httpx.AsyncClient, int], Awaitable[httpx.Response]]:
    pages = instances // 100

    async def list_page(client: httpx.AsyncClient, index: int) -> httpx.Response:
        params = {"pageNum": index % pages + 1, "pageSize": 100}
        return await client.get("/gpu/instances", params=params)

    return list_page


async def measure(sim: SimulatorProcess, args: argparse.Namespace) -> list[Result]:
    pid = sim.process.pid if sim.process else None
    limits = httpx.Limits(
        max_connections=args.concurrency, max_keepalive_connections=args.concurrency
    )
    async with httpx.AsyncClient(
        base_url=sim.v1_url, headers=sim.auth_headers, limits=limits, timeout=30
    ) as client:
        results = [
            await run(
                "POST /gpu/instance/create", args.creates, args.concurrency, client, create, pid
            )
        ]
        listed = (await client.get("/gpu/instances")).json()["total"]
        results.append(
            await run(
                f"GET /gpu/instances (pageSize 100, {listed:,} instances)",
                args.lists, args.concurrency, client, lister(listed), pid,
            )
        )  # fmt: skip
        more = 10_000 - listed
        await run("fill", more, args.concurrency, client, create)
        listed = (await client.get("/gpu/instances")).json()["total"]
        results.append(
            await run(
                f"GET /gpu/instances (pageSize 100, {listed:,} instances)",
                args.lists, args.concurrency, client, lister(listed), pid,
            )
        )  # fmt: skip
    return results


def report(results: list[Result], args: argparse.Namespace) -> str:
    today = datetime.datetime.now(datetime.UTC).date().isoformat()
    command = (
        f"python -m bench.simulator_throughput --concurrency {args.concurrency} "
        f"--creates {args.creates} --lists {args.lists} --write-docs"
    )
    lines = [
        START,
        "## Simulator throughput",
        "",
        f"Measured {today} on {os.cpu_count()} cores ({platform.processor() or platform.machine()},"
        f" Python {platform.python_version()}, {platform.system()}). The simulator ran as its own"
        " process (`novita-manager simulator`, one uvicorn worker); the load came from"
        f" {args.concurrency} concurrent keep-alive httpx connections in one asyncio process on the"
        " same machine, so both share the CPU and the figures are a floor. Load average before"
        f" the run: {args.load_before} (other work was running on the machine).",
        "",
        f"Command: `{command}`",
        "",
        "| endpoint | requests | requests/s | p50 ms | p99 ms | simulator CPU ms/request |"
        " requests/s one simulator core can serve |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
        *(result.row() for result in results),
        "",
        "requests/s is what the httpx load generator reached; it used more CPU per request than"
        " the simulator, so the last column (1000 / the simulator's own CPU ms per request,"
        " read from /proc) is the simulator's capacity. Listing without filters costs O(page),"
        " not O(instances) (compare the last two rows); each instance's JSON is cached until"
        " its status or fields change (the 10,000 were created moments before, so many were"
        " still changing status during that row).",
        END,
    ]
    return "\n".join(lines)


def write_docs(section: str) -> None:
    write_section("simulator-throughput", section.removeprefix(START).removesuffix(END))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--creates", type=int, default=1000)
    parser.add_argument("--lists", type=int, default=3000)
    parser.add_argument("--write-docs", action="store_true")
    args = parser.parse_args()
    args.load_before = " / ".join(f"{load:.1f}" for load in os.getloadavg())
    with SimulatorProcess(SimulatorConfig(seed=1)) as sim:
        results = asyncio.run(measure(sim, args))
    section = report(results, args)
    print(section)
    if args.write_docs:
        write_docs(section)
        print(f"updated {DOCS}", file=sys.stderr)


if __name__ == "__main__":
    main()
