"""Lifecycle benchmark: N instances end to end, service and simulator as separate processes.

Usage: python -m bench.lifecycle [--n 1000] [--time-scale 0.01] [--poll-interval 1]
       [--concurrency 50] [--get-rate 200] [--database sqlite|postgresql] [--write-docs]

POSTs N creates (at most --concurrency in flight) while a separate loop GETs
`/api/instances/{id}` at a fixed rate, waits until every instance is `running` and its
`instance.running` webhook arrived, then reports: wall time, service CPU seconds per instance,
peak RSS (VmHWM), upstream calls per instance by endpoint (simulator stats; the account listing
is shown apart), listing calls per sync interval against the number of pages, the lag from
upstream `running` (simulator `statusSince`) to the webhook arriving, and GET latency under load
(from a separate load process, during the run and again once all instances run).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import httpx
from tests.fixtures.webhook_receiver import WebhookReceiver

from bench.common import (
    RateLoad,
    cpu_seconds,
    floor_cpu_ms,
    fmt_ms,
    machine,
    memory_kib,
    percentile,
    process_tree,
    service_pid,
    stack_on_simulator,
    steady_collector,
    today,
    write_section,
)
from novita_manager.simulator import DEFAULT_PROFILE, readings_for

LISTING = "GET /gpu/instances"
# The status sync asks for 100 per page; the simulator's default profile may cap it lower
# (reading `page_size_cap`), and the pages then follow what it returns.
PAGE_SIZE = min(100, readings_for(DEFAULT_PROFILE)["page_size_cap"] or 100)
POST_TIMEOUT = aiohttp.ClientTimeout(total=60)


def body(index: int) -> dict[str, Any]:
    return {"name": f"bench-{index}", "productName": "RTX 4090 24GB", "templateId": "1"}


def scrape(text: str, name: str, label: str) -> dict[str, float]:
    """Sum a Prometheus counter's samples by one label (e.g. steps by pipeline)."""
    totals: dict[str, float] = {}
    for line in text.splitlines():
        if not line.startswith(name + "{"):
            continue
        labels, value = line[len(name) + 1 :].rsplit("} ", 1)
        found = dict(part.split("=", 1) for part in labels.split(",") if "=" in part)
        key = found.get(label, "").strip('"')
        totals[key] = totals.get(key, 0.0) + float(value)
    return totals


class NoLoad:
    """`--get-rate 0`: no read load (the lifecycle's own CPU, without reads beside it)."""

    def add(self, path: str) -> None:
        pass

    def stop(self) -> dict[str, Any]:
        nan = float("nan")
        return {"requests": 0, "p50": nan, "p99": nan, "statuses": {}, "errors": 0, "late": 0}


def read_load(base_url: str, rate: float) -> RateLoad | NoLoad:
    return RateLoad(base_url, rate).start() if rate > 0 else NoLoad()


def machine_busy_seconds() -> float:
    """CPU seconds every process on the machine used so far (/proc/stat: all but idle, iowait)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def means(text: str, histogram: str, label: str) -> dict[str, float]:
    """A histogram's mean by one label (its _sum over its _count)."""
    sums = scrape(text, histogram + "_sum", label)
    counts = scrape(text, histogram + "_count", label)
    return {key: sums[key] / counts[key] for key in sums if counts.get(key)}


def total_calls(stats: dict[str, Any]) -> dict[str, int]:
    return {endpoint: sum(outcomes.values()) for endpoint, outcomes in stats["calls"].items()}


async def post_all(
    base_url: str, n: int, concurrency: int, ids: list[str], load: RateLoad | NoLoad
) -> dict[str, Any]:
    """POST `n` creates, `concurrency` in flight. The client is aiohttp: httpx cost 1.2 ms of
    CPU per request (bench.http_clients), and the benchmark process, sharing the machine's
    cores with the service, took more than half a core for its creates alone."""
    limit = asyncio.Semaphore(concurrency)
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    shed = [0]
    connector = aiohttp.TCPConnector(limit=concurrency + 10)
    session = aiohttp.ClientSession(base_url, connector=connector, timeout=POST_TIMEOUT)

    async def one(index: int) -> None:
        async with limit:
            began = time.perf_counter()
            # A kept-alive connection the server closed meanwhile fails at once: send again on
            # a fresh one, under an Idempotency-Key so a create is never made twice.
            headers = {"Idempotency-Key": f"bench-{index}"}
            # A 503 (load shed at admission) is sent again after its Retry-After, counted.
            for attempt in range(30):
                try:
                    async with session.post(
                        "/api/instances", json=body(index), headers=headers
                    ) as response:
                        status = response.status
                        answer = await response.read()
                        retry_after = float(response.headers.get("retry-after", "1"))
                except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError):
                    if attempt == 29:
                        raise
                    continue
                if status != 503:
                    break
                shed[0] += 1
                await asyncio.sleep(retry_after)
            latencies.append(time.perf_counter() - began)
        statuses[status] = statuses.get(status, 0) + 1
        if status == 201:
            instance_id = json.loads(answer)["instanceId"]
            ids.append(instance_id)
            load.add(f"/api/instances/{instance_id}")

    began = time.perf_counter()
    async with session:
        await asyncio.gather(*(one(i) for i in range(n)))
    return {
        "seconds": time.perf_counter() - began,
        "p50": percentile(latencies, 50),
        "p99": percentile(latencies, 99),
        "statuses": statuses,
        "shed": shed[0],
    }


class RunningEvents:
    """First `instance.running` delivery per instance id: (arrival time, data). Parses each
    delivery once (the receiver keeps them all; re-parsing on every poll costs the benchmark
    process the CPU it needs for its clients)."""

    def __init__(self, receiver: WebhookReceiver) -> None:
        self.receiver = receiver
        self.first: dict[str, tuple[float, dict[str, Any]]] = {}
        self._seen = 0

    def update(self) -> int:
        requests = self.receiver.requests()
        for request in requests[self._seen :]:
            event = json.loads(request.body)
            if event["type"] == "instance.running":
                self.first.setdefault(event["data"]["instanceId"], (request.at, event["data"]))
        self._seen = len(requests)
        return len(self.first)


async def wait_all_running(
    client: httpx.AsyncClient, events: RunningEvents, n: int, timeout: float
) -> None:
    began = time.perf_counter()
    running = 0
    while time.perf_counter() - began < timeout:
        if events.update() >= n:
            listed = await client.get("/api/instances", params={"status": "running", "limit": 1})
            running = listed.json()["total"] if listed.status_code == 200 else -1
            if running >= n:
                return
        await asyncio.sleep(0.1)
    raise SystemExit(f"timed out: {running} of {n} running, {len(events.first)} hooks")


async def listing_rate(sim_control: Any, seconds: float) -> float:
    """Account listing calls per second over a quiet window (every instance already running)."""
    before = total_calls(sim_control.stats()).get(LISTING, 0)
    await asyncio.sleep(seconds)
    after = total_calls(sim_control.stats()).get(LISTING, 0)
    return (after - before) / seconds


async def lag_stages(url: str, ids: list[str], upstream_running: dict[str, float],
                     arrived: dict[str, float]) -> dict[str, dict[str, float]]:  # fmt: skip
    """Where the running -> webhook lag goes, per instance, from the service's own records:
    upstream running -> recorded (`ready_at`, written with the webhook row) -> first attempt
    began -> arrived. Wall-clock times of one machine, so the stages are comparable."""
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(url)
    query = text(
        "SELECT i.id, i.ready_at, min(a.attempted_at) FROM instances i "
        "JOIN webhook_deliveries d ON d.instance_id = i.id AND d.event_type = 'instance.running' "
        "JOIN webhook_attempts a ON a.delivery_id = d.id GROUP BY i.id, i.ready_at"
    )
    try:
        async with engine.connect() as conn:
            rows = (await conn.execute(query)).all()
    finally:
        await engine.dispose()
    stages: dict[str, list[float]] = {"discovered": [], "queued": [], "sent": []}
    for instance_id, ready_at, attempted_at in rows:
        if instance_id not in upstream_running or instance_id not in arrived:
            continue
        ready, attempted = _epoch(ready_at), _epoch(attempted_at)
        stages["discovered"].append(ready - upstream_running[instance_id])
        stages["queued"].append(attempted - ready)
        stages["sent"].append(arrived[instance_id] - attempted)
    return {
        name: {
            "p50": percentile(values, 50),
            "p99": percentile(values, 99),
            "min": min(values, default=float("nan")),
        }
        for name, values in stages.items()
    }


def _epoch(value: Any) -> float:
    """A timestamp column as epoch seconds (SQLite returns ISO text, PostgreSQL datetimes)."""
    from datetime import UTC, datetime

    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return float(value.timestamp())


async def measure(args: argparse.Namespace, base_url: str, sim: Any, receiver: WebhookReceiver,
                  pid: int, url: str) -> dict[str, Any]:  # fmt: skip
    sim.control.reset(seed=1, autostart=True, time_scale=args.time_scale)  # zero the counts
    cpu_before, api_before = cpu_seconds(pid), cpu_seconds(pid, tree=False)
    sim_pid = sim.process.pid
    sim_before, machine_before = cpu_seconds(sim_pid), machine_busy_seconds()
    ids: list[str] = []
    events = RunningEvents(receiver)
    load = read_load(base_url, args.get_rate)
    limits = httpx.Limits(max_connections=args.concurrency + 10)
    async with httpx.AsyncClient(base_url=base_url, timeout=60, limits=limits) as client:
        began = time.perf_counter()
        posts = await post_all(base_url, args.n, args.concurrency, ids, load)
        await wait_all_running(client, events, len(ids), args.timeout)
        wall = time.perf_counter() - began
        get_during = await asyncio.to_thread(load.stop)
        cpu = cpu_seconds(pid) - cpu_before
        api_cpu = cpu_seconds(pid, tree=False) - api_before  # the API process alone
        pipeline_processes = len(process_tree(pid)) - 1  # serve's children
        sim_cpu = cpu_seconds(sim_pid) - sim_before
        machine_cpu = machine_busy_seconds() - machine_before
        metrics = (await client.get("/metrics")).text
        calls = total_calls(sim.control.stats())
        # Steady state (all running): listing calls per interval, and the same GET load again.
        idle_load = read_load(base_url, args.get_rate)
        for instance_id in ids:
            idle_load.add(f"/api/instances/{instance_id}")
        watch_before = cpu_seconds(pid) - cpu_seconds(pid, tree=False)  # the pipeline process
        steady = await listing_rate(sim.control, args.steady_seconds)
        watch_cpu = cpu_seconds(pid) - cpu_seconds(pid, tree=False) - watch_before
        get_steady = await asyncio.to_thread(idle_load.stop)
        floor = await floor_cpu_ms(base_url, pid)
    upstream = {i["id"]: i for i in sim.control.instances()}
    lags = []
    upstream_running: dict[str, float] = {}
    arrivals: dict[str, float] = {}
    for arrived, data in events.first.values():
        item = upstream.get(data["novitaInstanceId"])
        if item is not None and item["status"] == "running":
            lags.append(arrived - item["statusSince"])
            upstream_running[data["instanceId"]] = item["statusSince"]
            arrivals[data["instanceId"]] = arrived
    stages = await lag_stages(url, ids, upstream_running, arrivals)
    per_instance = {k: v / len(ids) for k, v in sorted(calls.items()) if k != LISTING}
    return {
        "n": args.n,
        "created": len(ids),
        "wall": wall,
        "posts": posts,
        "cpu": cpu,
        "cpu_per_instance": cpu / max(len(ids), 1),
        "api_cpu": api_cpu,
        "pipeline_processes": pipeline_processes,
        "sim_cpu": sim_cpu,
        "watch_cpu_share": watch_cpu / args.steady_seconds,
        "machine_cpu": machine_cpu,
        "peak_rss_mib": memory_kib(pid)["VmHWM"] / 1024,
        "calls": calls,
        "per_instance": per_instance,
        "per_instance_total": sum(per_instance.values()),
        "listing_calls": calls.get(LISTING, 0),
        "pages": math.ceil(len(ids) / PAGE_SIZE),
        "steady_listing_per_s": steady,
        "lag_p50": percentile(lags, 50),
        "lag_p99": percentile(lags, 99),
        "lag_max": max(lags) if lags else float("nan"),
        "lag_count": len(lags),
        "lag_stages": stages,
        "get": get_during,
        "get_steady": get_steady,
        "steps": scrape(metrics, "novita_manager_pipeline_rows_processed_total", "pipeline"),
        "deferrals": scrape(metrics, "novita_manager_webhook_deferrals_total", "reason"),
        "claim_wait": means(metrics, "novita_manager_pipeline_lag_seconds", "pipeline"),
        "sync_parts": means(metrics, "novita_manager_status_sync_duration_seconds", "part"),
        "upstream_wait": means(
            metrics, "novita_manager_upstream_call_duration_seconds", "endpoint"
        ),
        "duplicates": len(upstream) - len(ids),
        "floor_cpu_ms": floor,
    }


# Issue 15's goals for a burst of lifecycles.
CPU_GOAL_MS = 15.0  # service CPU per lifecycle (create -> running -> webhook)
LAG_GOAL_EXTRA = 2.0  # running -> webhook lag p99 at most the poll interval plus this
GET_GOAL_RATE, GET_GOAL_P99_MS = 300.0, 20.0  # reads during the lifecycles (issue 15)


def report(r: dict[str, Any], args: argparse.Namespace, command: str) -> str:
    verdict = "met" if r["per_instance_total"] <= 5 else "NOT met"
    cpu_ms = r["cpu_per_instance"] * 1000
    floor = r["floor_cpu_ms"]
    cpu_met = "met" if cpu_ms <= CPU_GOAL_MS else "NOT met"
    lag_goal = args.poll_interval + LAG_GOAL_EXTRA
    lag_met = "met" if r["lag_p99"] <= lag_goal else "NOT met"
    steady_runs = r["steady_listing_per_s"] * args.poll_interval / max(r["pages"], 1)
    calls = ", ".join(f"`{k}` {v:.2f}" for k, v in r["per_instance"].items())
    g, s = r["get"], r["get_steady"]
    rows = [
        ("Instances posted / reached running", f"{r['created']} / {r['created']} (all)"),
        ("Wall time, first POST to last `instance.running` webhook", f"{r['wall']:.1f} s"),
        ("POST /api/instances (50 in flight)",
         f"{r['posts']['seconds']:.1f} s for all; p50 {fmt_ms(r['posts']['p50'])}, "
         f"p99 {fmt_ms(r['posts']['p99'])}; final statuses {r['posts']['statuses']}; 503s "
         f"answered and sent again after Retry-After {r['posts']['shed']}"),
        ("Service CPU (GET load included)",
         f"{r['cpu']:.1f} s total, {r['cpu_per_instance'] * 1000:.1f} ms/instance; busy "
         f"{r['cpu'] / r['wall']:.0%} of one core over the wall time; of it the API process "
         f"(POSTs, GETs) {r['api_cpu'] * 1000 / max(r['created'], 1):.1f} ms/instance, the "
         f"pipeline process{'es' if r.get('pipeline_processes', 1) > 1 else ''} "
         f"({r.get('pipeline_processes', 1)}) "
         f"{(r['cpu'] - r['api_cpu']) * 1000 / max(r['created'], 1):.1f} ms/instance"),
        ("Everything else on the machine over the wall time",
         f"simulator {r['sim_cpu'] / r['wall']:.0%} of one core; all processes together "
         f"{r['machine_cpu'] / r['wall']:.0%} of one core (of {os.cpu_count()}: the benchmark's "
         f"clients and the simulator share the cores with the service)"),
        ("Goal: ≤ 15 ms of service CPU per lifecycle",
         f"**{cpu_ms:.1f} ms** ({cpu_met}; "
         + (f"GET load at {args.get_rate:g}/s included" if args.get_rate > 0 else "no reads")
         + f"), = {cpu_ms / floor:.0f}x the floor"),
        ("Floor, same run: service CPU per `GET /health/live`", f"{floor:.2f} ms"),
        (f"Goal: lag p99 ≤ poll interval + 2 s = {lag_goal:g} s",
         f"**{r['lag_p99']:.1f} s** ({lag_met})"),
        ("Service peak RSS (VmHWM)", f"{r['peak_rss_mib']:.0f} MiB"),
        ("Upstream calls per instance (listing excluded)",
         f"**{r['per_instance_total']:.2f}** (target ≤ 5: {verdict}): {calls}"),
        ("Account listing calls during the run (`GET /gpu/instances`)",
         f"{r['listing_calls']} ({r['listing_calls'] / max(r['created'], 1):.2f} per instance)"),
        ("Status sync, steady state (all running)",
         f"{r['steady_listing_per_s']:.1f} listing calls/s over {args.steady_seconds:.0f} s with "
         f"{r['pages']} pages of {PAGE_SIZE}: ≈ {steady_runs:.2f} sync runs x {r['pages']} pages "
         f"per {args.poll_interval:g} s interval"),
        ("Lag upstream `running` → webhook arrived",
         f"p50 {fmt_ms(r['lag_p50'])}, p99 {fmt_ms(r['lag_p99'])}, max {fmt_ms(r['lag_max'])} "
         f"({r['lag_count']} instances)"),
        ("Where the lag goes (p50 / p99)",
         "; ".join(f"{name} {fmt_ms(v['p50'])} / {fmt_ms(v['p99'])}"
                   for name, v in r["lag_stages"].items())
         + " (upstream running → recorded by the service → first attempt began → arrived)"),
        (f"`GET /api/instances/{{id}}` at {args.get_rate:g}/s during the run",
         f"p50 {fmt_ms(g['p50'])}, p99 {fmt_ms(g['p99'])} ({g['requests']} requests, statuses "
         f"{g['statuses']}, errors {g['errors']}, sent late {g['late']})"),
        (f"`GET /api/instances/{{id}}` at {args.get_rate:g}/s after, all running "
         f"({args.steady_seconds:g} s)",
         f"p50 {fmt_ms(s['p50'])}, p99 {fmt_ms(s['p99'])} ({s['requests']} requests, statuses "
         f"{s['statuses']}, errors {s['errors']}, sent late {s['late']})"),
        ("Pipeline steps per instance (claims handled)",
         ", ".join(f"{k} {v / max(r['created'], 1):.2f}" for k, v in sorted(r["steps"].items()))
         + "; webhook deferrals per instance "
         + (", ".join(f"{k} {v / max(r['created'], 1):.2f}"
                      for k, v in sorted(r["deferrals"].items())) or "0")),
        ("Pipeline process CPU while all run (status sync of every instance, reads aside)",
         f"{r['watch_cpu_share']:.1%} of one core over {args.steady_seconds:g} s"),
        ("Mean wait from due to claimed, by pipeline",
         ", ".join(f"{k} {fmt_ms(v)}" for k, v in sorted(r["claim_wait"].items()))),
        ("Mean status sync run, by part",
         ", ".join(f"{k} {fmt_ms(v)}" for k, v in sorted(r["sync_parts"].items()))),
        ("Mean Novita call duration, by endpoint (as the service saw it)",
         ", ".join(f"`{k}` {fmt_ms(v)}" for k, v in sorted(r["upstream_wait"].items()))),
        ("Novita instances created beyond one per request", str(r["duplicates"])),
    ]  # fmt: skip
    if args.get_rate <= 0:  # no read load: no read rows
        rows = [row for row in rows if not row[0].startswith("`GET /api/instances/{id}`")]
    elif args.get_rate >= GET_GOAL_RATE:
        met = "met" if g["p99"] < GET_GOAL_P99_MS / 1000 else "NOT met"
        rows.insert(3, (f"Goal: GET p99 < {GET_GOAL_P99_MS:g} ms at {GET_GOAL_RATE:g}/s open loop "
                        "during the lifecycles",
                        f"**{fmt_ms(g['p99'])}** ({met}; at {args.get_rate:g}/s)"))  # fmt: skip
    table = "\n".join(f"| {k} | {v} |" for k, v in rows)
    title = f"{r['n']:,} instances end to end, {args.database}"
    title += f", {args.get_rate:g} GETs/s beside" if args.get_rate > 0 else ", no reads"
    return f"""## Lifecycle: {title}

Command: `{command}`
Machine: {machine()}. Date: {today()}.
Service (`novita-manager serve`, {args.database}) and simulator (time scale {args.time_scale:g})
as separate processes on 127.0.0.1; `INSTANCE_POLL_INTERVAL={args.poll_interval:g}`, the
webhook receiver and the POST client in the benchmark process, the GET load in a process of
its own (all share the 2 cores).

| measure | result |
|---|---|
{table}

Upstream calls per instance count every call the simulator saw (retries included) divided by
the number of instances; the catalogue calls (products, clusters, template) are cached, so they
amortise to ~0. The lag is measured from the simulator's `statusSince` of `running` to the
arrival of the first `instance.running` delivery; it is bounded by the sync interval (the
status sync discovers `running` on its next listing) plus the provisioning step and delivery
*when the service keeps up*; when the whole burst reaches `running` within seconds, the lag is
the time the service needs to work through the queue of transitions and deliveries (one Python
process: CPU-bound at close to one core, see the CPU line, with the GET load taking its share).
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--time-scale", type=float, default=0.01)
    parser.add_argument("--poll-interval", type=float, default=1.0)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--get-rate", type=float, default=200.0)
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--steady-seconds", type=float, default=10.0)
    parser.add_argument("--timeout", type=float, default=900.0)
    parser.add_argument("--write-docs", action="store_true")
    args = parser.parse_args()
    steady_collector()  # its timings must not include its own collector's pauses
    with stack_on_simulator(
        args.database, args.poll_interval, args.time_scale, webhooks=True
    ) as stack:
        assert stack.receiver is not None
        result = asyncio.run(measure(args, stack.service.base_url, stack.sim, stack.receiver,
                                     service_pid(stack.service), stack.database_url))  # fmt: skip
    command = " ".join(["python -m bench.lifecycle", *sys.argv[1:]])
    text = report(result, args, command)
    print(text)
    print(
        json.dumps({k: v for k, v in result.items() if k != "calls"}, default=str), file=sys.stderr
    )
    if args.write_docs:
        # One section per database, so a PostgreSQL run does not replace the SQLite figures.
        name = "lifecycle" if args.database == "sqlite" else f"lifecycle-{args.database}"
        if args.get_rate <= 0:  # the lifecycle's own CPU: a section of its own
            name += "-no-reads"
        write_section(name, text)
        print("updated docs/benchmarks.md", file=sys.stderr)


if __name__ == "__main__":
    main()
