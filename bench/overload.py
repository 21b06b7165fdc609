"""Overload benchmark: lifecycles while reads are offered at twice what the process can serve.

Usage: python -m bench.overload [--n 200] [--poll-interval 1] [--factor 2] [--write-docs]

1. Measures the read capacity of the service (`wrk` closed loop on `GET /api/instances/{id}`
   with 100 instances running) and the floor (`GET /health/live`) in the same run.
2. Runs N lifecycles (create → running → `instance.running` webhook) without read load: the
   unloaded wall time.
3. Runs N more while an open-loop generator (bench.common.RateLoad, a separate process) offers
   `--factor` x capacity reads per second: the loaded wall time, what the reads got (answered
   p50/p99, 503s) and the shed counter from /metrics.
Goals (issue 15): loaded lifecycles at ≥ 80 % of the unloaded speed, the excess refused early
with 503 + Retry-After, the answered reads' p99 < 100 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from tests.fixtures.webhook_receiver import WebhookReceiver

from bench.common import (
    CLK_TCK,
    RateLoad,
    cpu_seconds,
    fmt_ms,
    machine,
    percentile,
    process_tree,
    service_on_simulator,
    service_pid,
    today,
    write_section,
)
from bench.reads import wrk

GOALS = {"speed": 0.8, "p99_ms": 100.0}


def create_body(prefix: str, index: int) -> dict[str, Any]:
    return {"name": f"{prefix}-{index}", "productName": "RTX 4090 24GB", "templateId": "1"}


async def lifecycles(base: str, receiver: WebhookReceiver, prefix: str, n: int) -> dict[str, float]:
    """Seconds from the first create to the last `instance.running` webhook of this batch
    (`seconds`), to the last create answered (`creates`), and the creates' p99 latency."""
    seen_before = len(receiver.requests())
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        began = time.perf_counter()
        limit = asyncio.Semaphore(20)
        latencies: list[float] = []

        async def one(index: int) -> str:
            # A kept-alive connection the server closed meanwhile fails at once: sent again on a
            # fresh one, under an Idempotency-Key so that a create is never made twice.
            headers = {"Idempotency-Key": f"overload-{prefix}-{index}"}
            async with limit:
                sent = time.perf_counter()
                for _ in range(100):  # a create shed with 503 is retried, as a client would
                    try:
                        response = await client.post(
                            "/api/instances", json=create_body(prefix, index), headers=headers
                        )
                    except (httpx.ReadError, httpx.RemoteProtocolError):
                        continue
                    if response.status_code != 503:
                        break
                    await asyncio.sleep(float(response.headers.get("Retry-After", "1")))
                response.raise_for_status()
                latencies.append(time.perf_counter() - sent)
                return str(response.json()["instanceId"])

        ids = set(await asyncio.gather(*(one(i) for i in range(n))))
        creates = time.perf_counter() - began
        while True:
            running = {
                json.loads(r.body)["data"]["instanceId"]
                for r in receiver.requests()[seen_before:]
                if b"instance.running" in r.body
            }
            if ids <= running:
                return {
                    "seconds": time.perf_counter() - began,
                    "creates": creates,
                    "create_p99": percentile(latencies, 99),
                }
            if time.perf_counter() - began > 900:
                raise SystemExit(f"timed out: {len(ids & running)} of {n} running")
            await asyncio.sleep(0.1)


def shed_by_reason(base: str) -> dict[str, float]:
    """`novita_manager_requests_shed_total` by reason, from the service's /metrics."""
    text = httpx.get(f"{base}/metrics", timeout=10).text
    return {
        reason: float(value)
        for reason, value in re.findall(
            r'^novita_manager_requests_shed_total\{reason="([^"]*)"\} ([\d.e+]+)$', text, re.M
        )
    }


def own_cpu_seconds(pid: int) -> float:
    """CPU seconds of one process, without its children (the API process of `serve`)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def machine_ticks() -> tuple[int, int]:
    """(busy, total) clock ticks of all cores since boot, from the `cpu` line of /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return sum(fields) - fields[3] - fields[4], sum(fields)


def run(args: argparse.Namespace, base: str, pid: int, receiver: WebhookReceiver) -> dict[str, Any]:
    ids = asyncio.run(prepare(base, receiver))
    one = f"/api/instances/{ids[0]}"
    wrk(f"{base}/health/live", 1, 10)  # warm the connections
    cpu = cpu_seconds(pid)
    floor = wrk(f"{base}/health/live", 5, 10)
    floor["cpu_ms"] = (cpu_seconds(pid) - cpu) * 1000 / max(floor["requests"], 1)
    cpu = cpu_seconds(pid)
    capacity = wrk(base + one, 5, 10)
    capacity["cpu_ms"] = (cpu_seconds(pid) - cpu) * 1000 / max(capacity["requests"], 1)
    unloaded = asyncio.run(lifecycles(base, receiver, "calm", args.n))
    offered = args.factor * capacity["rate"]
    shed_before = shed_by_reason(base)
    load = RateLoad(base, offered, connections=256).start()
    load.add(one)
    time.sleep(1)  # the load is on before the lifecycles start
    generator = load.pid()
    api_cpu, all_cpu, gen_cpu = own_cpu_seconds(pid), cpu_seconds(pid), cpu_seconds(generator)
    ticks = machine_ticks()
    loaded = asyncio.run(lifecycles(base, receiver, "busy", args.n))
    api_cpu, all_cpu = own_cpu_seconds(pid) - api_cpu, cpu_seconds(pid) - all_cpu
    gen_cpu = cpu_seconds(generator) - gen_cpu
    busy = machine_ticks()
    machine_busy = (busy[0] - ticks[0]) / max(busy[1] - ticks[1], 1)
    reads = load.stop()
    shed_after = shed_by_reason(base)
    return {
        "floor": floor,
        "capacity": capacity,
        "offered": offered,
        "unloaded": unloaded,
        "loaded": loaded,
        "reads": reads,
        "shed": {k: v - shed_before.get(k, 0.0) for k, v in shed_after.items()},
        "api_cpu": api_cpu,
        "worker_cpu": all_cpu - api_cpu,
        "generator_cpu": gen_cpu,
        "machine_busy": machine_busy,
        "processes": len(process_tree(pid)),
    }


async def prepare(base: str, receiver: WebhookReceiver) -> list[str]:
    """100 running instances to read (they also make the status sync's work realistic)."""
    await lifecycles(base, receiver, "read", 100)
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        listed = await client.get("/api/instances", params={"limit": 1, "name": "read-"})
        return [listed.json()["instances"][0]["id"]]


def report(r: dict[str, Any], args: argparse.Namespace, command: str) -> str:
    speed = r["unloaded"]["seconds"] / r["loaded"]["seconds"]
    calm, busy = r["unloaded"], r["loaded"]
    reads = r["reads"]
    answered = reads["statuses"].get(200, 0)
    refused = reads["statuses"].get(503, 0)
    others = {k: v for k, v in reads["statuses"].items() if k not in (200, 503)}
    ok = reads["by_status"].get(200, {"p50": float("nan"), "p99": float("nan")})
    no = reads["by_status"].get(503, {"p50": float("nan"), "p99": float("nan")})
    shed = sum(r["shed"].values())
    met = {
        "speed": speed >= GOALS["speed"],
        "shed": refused > 0 and shed >= refused,
        "p99": ok["p99"] * 1000 < GOALS["p99_ms"],
    }
    floor, capacity = r["floor"], r["capacity"]
    requests = answered + refused
    reasons = ", ".join(f"{k} {v:.0f}" for k, v in sorted(r["shed"].items()) if v)
    return "\n".join(
        [
            f"## Overload (issue 15){'' if args.database == 'sqlite' else ': PostgreSQL'}",
            "",
            f"`{command}` · {today()} · {machine()} · {args.database} · poll interval "
            f"{args.poll_interval:g} s · `serve` as {r['processes']} processes (the API, and "
            "the pipelines in its child)",
            "",
            "| measure | result | goal |",
            "|---|---|---|",
            f"| floor: `GET /health/live`, wrk 10 connections | {floor['rate']:.0f}/s, "
            f"{floor['cpu_ms']:.3f} ms CPU each | |",
            f"| capacity: `GET /api/instances/{{id}}`, wrk 10 connections | "
            f"{capacity['rate']:.0f}/s, {capacity['cpu_ms']:.3f} ms CPU each "
            f"({capacity['cpu_ms'] / floor['cpu_ms']:.2f}x floor) | |",
            f"| {args.n} lifecycles, no read load | {calm['seconds']:.1f} s (creates answered in "
            f"{calm['creates']:.1f} s, p99 {fmt_ms(calm['create_p99'])}) | |",
            f"| {args.n} lifecycles, reads offered at {r['offered']:.0f}/s ({args.factor:g}x "
            f"capacity, open loop) | {busy['seconds']:.1f} s: **{speed:.0%}** of the unloaded "
            f"speed (creates answered in {busy['creates']:.1f} s, p99 "
            f"{fmt_ms(busy['create_p99'])}) | ≥ 80 %: {'met' if met['speed'] else 'NOT met'} |",
            f"| reads answered / refused with 503 + Retry-After | {answered} / {refused} (shed "
            f"counter in /metrics +{shed:.0f}: {reasons or 'none'}; other answers: {others}) "
            f"| excess refused and counted: {'met' if met['shed'] else 'NOT met'} |",
            f"| answered reads, from scheduled send to answer | p50 {fmt_ms(ok['p50'])}, p99 "
            f"{fmt_ms(ok['p99'])} | p99 < {GOALS['p99_ms']:g} ms: "
            f"{'met' if met['p99'] else 'NOT met'} |",
            f"| refused reads, from scheduled send to answer | p50 {fmt_ms(no['p50'])}, p99 "
            f"{fmt_ms(no['p99'])} | |",
            f"| CPU during the loaded lifecycles | API process {r['api_cpu']:.1f} s "
            f"({r['api_cpu'] * 1000 / max(requests, 1):.3f} ms per read offered), pipeline "
            f"process {r['worker_cpu']:.1f} s, the load generator {r['generator_cpu']:.1f} s, "
            f"over {busy['seconds']:.1f} s; the machine's cores were "
            f"{r['machine_busy']:.0%} busy (every process on it) | |",
            "",
            f"The generator runs in its own process on the same cores as the service and the "
            f"simulator, so its own CPU is part of the load the machine carries; it sent "
            f"{reads['late']} of {requests} requests more than 50 ms after their scheduled time "
            f"(when that is a large share, the generator, not only the service, fell behind, "
            f"and the latencies above include its delay).",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--poll-interval", type=float, default=1.0)
    parser.add_argument("--factor", type=float, default=2.0)
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument(
        "--env", action="append", default=[], help="KEY=VALUE for the service (repeatable)"
    )
    parser.add_argument("--write-docs", action="store_true")
    args = parser.parse_args()
    extra = dict(item.split("=", 1) for item in args.env)
    receiver = WebhookReceiver()
    receiver.start()
    try:
        with service_on_simulator(
            args.database, args.poll_interval, WEBHOOK_URL=receiver.url, **extra
        ) as service:
            result = run(args, service.base_url, service_pid(service), receiver)
    finally:
        receiver.stop()
    command = " ".join(["python -m bench.overload", *sys.argv[1:]])
    text = report(result, args, command)
    print(text)
    if args.write_docs:
        write_section("overload" if args.database == "sqlite" else "overload-postgresql", text)
        print("updated docs/benchmarks.md", file=sys.stderr)


if __name__ == "__main__":
    main()
