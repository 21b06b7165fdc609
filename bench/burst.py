"""Burst benchmark: N instances reach `running` at the same instant; how fast do the webhooks go?

Usage: python -m bench.burst [--n 1000] [--poll-interval 1] [--database sqlite|postgresql]
       [--time-scale 1] [--advance 90] [--get-rate 0] [--workers 0] [--write-docs]

`--workers N` (PostgreSQL) starts N `serve --role worker` processes beside the service: the
burst is then worked by N more pipeline processes than `serve`'s own children (two on
PostgreSQL on a machine of two cores or more, one on SQLite: PIPELINE_PROCESSES).

bench/lifecycle.py cannot make a burst: at time scale 0.01 an instance runs ~0.5 s after its
create, so instances reach `running` at the pace the POSTs arrive. Here the simulator runs at
time scale 1 (a create takes 52 s of simulated time to run), the N creates go in (50 in flight,
with an Idempotency-Key), the benchmark waits until every instance exists upstream and the
service has recorded its Novita id (none running yet), then moves the simulator's clock
forward (`POST /_simulator/clock`, docs/simulator.md) so that all N are `running` at once.

Measured from that advance to the last `instance.running` webhook: the lag from the instant each
instance became running (wall time) to its webhook (p50/p99/max, and where it goes, as in
bench/lifecycle.py), service CPU per instance beside the floor of the same run, upstream calls
per instance, and issue 15's verdict: lag p99 <= poll interval + 2 s.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, cast

import httpx
from tests.fixtures.webhook_receiver import WebhookReceiver

from bench.common import (
    RateLoad,
    cpu_seconds,
    floor_cpu_ms,
    fmt_ms,
    machine,
    percentile,
    postgres_pid,
    process_tree,
    service_pid,
    stack_on_simulator,
    steady_collector,
    today,
    write_section,
)
from bench.lifecycle import (
    LAG_GOAL_EXTRA,
    LISTING,
    RunningEvents,
    lag_stages,
    machine_busy_seconds,
    post_all,
    scrape,
    total_calls,
    wait_all_running,
)
from bench.scale_out import serving

STARTUP = 2 + 5 + 45  # simulated seconds from a create to `running` (toCreate, creating, pulling)


class _NoLoad:
    """Stands in for RateLoad while the creates go in: no GET load before the burst."""

    def add(self, path: str) -> None:
        pass


async def _service_rows(url: str) -> tuple[int, int, int]:
    """(instances, with a Novita id, running) as the service recorded them."""
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(url)
    query = text(
        "SELECT count(*), count(novita_instance_id), "
        "coalesce(sum(CASE WHEN status = 'running' THEN 1 ELSE 0 END), 0) FROM instances"
    )
    try:
        async with engine.connect() as conn:
            row = (await conn.execute(query)).one()
    finally:
        await engine.dispose()
    return int(row[0]), int(row[1]), int(row[2])


async def wait_created(sim: Any, url: str, n: int, timeout: float) -> dict[str, Any]:
    """Until all n exist upstream and in the service with their Novita id; none running."""
    began = time.perf_counter()
    while True:
        upstream = await asyncio.to_thread(sim.control.instances)
        rows, with_id, running = await _service_rows(url)
        statuses: dict[str, int] = {}
        for item in upstream:
            statuses[item["status"]] = statuses.get(item["status"], 0) + 1
        if statuses.get("running", 0) or running:
            raise SystemExit(
                f"{statuses.get('running', 0)} instances ran before the advance (service: "
                f"{running}): the creates took too long; use a larger --time-scale"
            )
        if len(upstream) >= n and with_id >= n:
            return {"seconds": time.perf_counter() - began, "upstream": statuses}
        if time.perf_counter() - began > timeout:
            raise SystemExit(f"timed out: {len(upstream)} upstream, {with_id}/{rows} with ids")
        await asyncio.sleep(0.5)


Workers = tuple[tuple[int, str], ...]  # extra `serve --role worker`: (pid, base URL)


async def all_metrics(client: httpx.AsyncClient, workers: Workers) -> str:
    """The service's /metrics and its extra workers' after it (the scrapes sum by label)."""
    texts = [(await client.get("/metrics")).text]
    for _, base_url in workers:
        texts.append((await client.get(f"{base_url}/metrics")).text)
    return "\n".join(texts)


def _diff(after: dict[str, float], before: dict[str, float]) -> dict[str, float]:
    return {k: v - before.get(k, 0.0) for k, v in after.items() if v - before.get(k, 0.0)}


def _means(before: str, after: str, histogram: str, label: str) -> dict[str, float]:
    """A histogram's mean by label over the burst only (differences of _sum and _count)."""
    sums = _diff(
        scrape(after, histogram + "_sum", label), scrape(before, histogram + "_sum", label)
    )
    counts = _diff(
        scrape(after, histogram + "_count", label), scrape(before, histogram + "_count", label)
    )
    return {key: sums.get(key, 0.0) / counts[key] for key in counts if counts[key]}


async def measure(args: argparse.Namespace, base_url: str, sim: Any, receiver: WebhookReceiver,
                  pid: int, url: str, workers: Workers = ()) -> dict[str, Any]:  # fmt: skip
    sim.control.reset(seed=1, autostart=True, time_scale=args.time_scale)  # zero the counts
    ids: list[str] = []
    events = RunningEvents(receiver)
    began = time.perf_counter()
    posts = await post_all(base_url, args.n, args.concurrency, ids, cast(RateLoad, _NoLoad()))
    # From here on requests are seconds apart: a connection per request, so none is a kept-alive
    # one the server has closed meanwhile.
    fresh = httpx.Limits(max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=base_url, timeout=60, limits=fresh) as client:
        ready = await wait_created(sim, url, len(ids), args.timeout)
        ready["since_first_post"] = time.perf_counter() - began
        # Quiet window: what the service burns with N instances and nothing to do but sync.

        def service_cpu() -> float:  # `serve` and its child, and the extra workers
            return cpu_seconds(pid) + sum(cpu_seconds(worker) for worker, _ in workers)

        print(f"quiet window (service pid {pid})", file=sys.stderr, flush=True)
        idle_cpu, idle_began = service_cpu(), time.perf_counter()
        await asyncio.sleep(args.idle_seconds)
        idle_rate = (service_cpu() - idle_cpu) / (time.perf_counter() - idle_began)
        metrics_before = await all_metrics(client, workers)
        calls_before = total_calls(sim.control.stats())
        load = RateLoad(base_url, args.get_rate).start() if args.get_rate > 0 else None
        for instance_id in ids if load else []:
            load.add(f"/api/instances/{instance_id}")  # type: ignore[union-attr]
        cpu_before, api_before = service_cpu(), cpu_seconds(pid, tree=False)
        sim_before, machine_before = cpu_seconds(sim.process.pid), machine_busy_seconds()
        database_pid = postgres_pid(url)
        database_before = cpu_seconds(database_pid) if database_pid else 0.0
        print(f"advancing the clock (service pid {pid})", file=sys.stderr, flush=True)
        clock = sim.control.advance_clock(args.advance)  # every instance runs from here
        advanced_at = clock["now"] - clock["offset"]  # the simulator's wall clock then
        await wait_all_running(client, events, len(ids), args.timeout)
        ended = time.time()
        cpu = service_cpu() - cpu_before
        api_cpu = cpu_seconds(pid, tree=False) - api_before
        pipeline_processes = len(process_tree(pid)) - 1 + len(workers)
        sim_cpu = cpu_seconds(sim.process.pid) - sim_before
        machine_cpu = machine_busy_seconds() - machine_before
        database_cpu = cpu_seconds(database_pid) - database_before if database_pid else None
        get_during = await asyncio.to_thread(load.stop) if load else None
        metrics_after = await all_metrics(client, workers)
        calls = _diff(
            {k: float(v) for k, v in total_calls(sim.control.stats()).items()},
            {k: float(v) for k, v in calls_before.items()},
        )
        floor = await floor_cpu_ms(base_url, pid)
    upstream = {i["id"]: i for i in sim.control.instances()}
    offset = clock["offset"]
    lags: list[float] = []
    became: dict[str, float] = {}  # service instance id -> wall time it became running
    arrivals: dict[str, float] = {}
    early = late = 0
    for arrived, data in events.first.values():
        item = upstream.get(data["novitaInstanceId"])
        if item is None or item["status"] != "running":
            continue
        since = item["statusSince"]
        if since <= advanced_at:  # simulated time then was still wall time: ran before it
            early += 1
            at = since
        else:
            at = max(since - offset, advanced_at)
            if since - offset > advanced_at:  # ran after the advance (a restart?)
                late += 1
        lags.append(arrived - at)
        became[data["instanceId"]] = at
        arrivals[data["instanceId"]] = arrived
    stages = await lag_stages(url, ids, became, arrivals)
    n = max(len(ids), 1)
    last = max(arrivals.values()) if arrivals else float("nan")
    per_second: dict[int, int] = {}  # webhooks arrived by whole second after the advance
    for arrived in arrivals.values():
        second = int(arrived - advanced_at)
        per_second[second] = per_second.get(second, 0) + 1
    return {
        "n": args.n,
        "created": len(ids),
        "posts": posts,
        "ready": ready,
        "idle_cpu_rate": idle_rate,
        "offset": offset,
        "burst_wall": ended - advanced_at,
        "last_hook": last - advanced_at,
        "cpu": cpu,
        "cpu_per_instance": cpu / n,
        "api_cpu": api_cpu,
        "pipeline_processes": pipeline_processes,
        "sim_cpu": sim_cpu,
        "database_cpu": database_cpu,
        "machine_cpu": machine_cpu,
        "calls": calls,
        "per_instance": {k: v / n for k, v in sorted(calls.items()) if k != LISTING},
        "listing_calls": calls.get(LISTING, 0.0),
        "lag_p50": percentile(lags, 50),
        "lag_p99": percentile(lags, 99),
        "lag_max": max(lags) if lags else float("nan"),
        "lag_count": len(lags),
        "ran_before_advance": early,
        "ran_after_advance": late,
        "lag_stages": stages,
        "per_second": dict(sorted(per_second.items())),
        "get": get_during,
        "steps": _diff(
            scrape(metrics_after, "novita_manager_pipeline_rows_processed_total", "pipeline"),
            scrape(metrics_before, "novita_manager_pipeline_rows_processed_total", "pipeline"),
        ),
        "deferrals": _diff(
            scrape(metrics_after, "novita_manager_webhook_deferrals_total", "reason"),
            scrape(metrics_before, "novita_manager_webhook_deferrals_total", "reason"),
        ),
        "claim_wait": _means(
            metrics_before, metrics_after, "novita_manager_pipeline_lag_seconds", "pipeline"
        ),
        "sync_parts": _means(
            metrics_before, metrics_after, "novita_manager_status_sync_duration_seconds", "part"
        ),
        "upstream_wait": _means(
            metrics_before,
            metrics_after,
            "novita_manager_upstream_call_duration_seconds",
            "endpoint",
        ),
        "window": (advanced_at, ended),
        "floor_cpu_ms": floor,
    }


def _log_errors(lines: list[str], window: tuple[float, float]) -> dict[str, Any]:
    """Error lines of the service log by event, over the run and within the burst."""
    from datetime import datetime

    total: dict[str, int] = {}
    burst: dict[str, int] = {}
    for line in lines:
        try:
            entry = json.loads(line)
        except ValueError:
            entry = {}
        event = str(entry.get("event", "unparsed"))
        total[event] = total.get(event, 0) + 1
        stamp = entry.get("timestamp")
        at = datetime.fromisoformat(stamp).timestamp() if isinstance(stamp, str) else 0.0
        if window[0] <= at <= window[1]:
            burst[event] = burst.get(event, 0) + 1
    return {"log_errors": total, "log_errors_burst": burst}


def report(r: dict[str, Any], args: argparse.Namespace, command: str) -> str:
    floor = r["floor_cpu_ms"]
    cpu_ms = r["cpu_per_instance"] * 1000
    n = max(r["created"], 1)
    net_ms = (r["cpu"] - r["idle_cpu_rate"] * r["burst_wall"]) * 1000 / n
    lag_goal = args.poll_interval + LAG_GOAL_EXTRA
    lag_met = "met" if r["lag_p99"] <= lag_goal else "NOT met"
    phase = r["lag_stages"]["discovered"]["min"]  # the first instance recorded as running
    calls = ", ".join(f"`{k}` {v:.2f}" for k, v in r["per_instance"].items()) or "none"
    rows = [
        ("Instances posted / became running at the advance",
         f"{r['created']} / {r['lag_count']} (ran before the advance: "
         f"{r['ran_before_advance']}, after it: {r['ran_after_advance']})"),
        (f"Goal: lag p99 ≤ poll interval + 2 s = {lag_goal:g} s",
         f"**{r['lag_p99']:.2f} s** ({lag_met})"),
        ("Lag running → `instance.running` webhook arrived",
         f"p50 {fmt_ms(r['lag_p50'])}, p99 {fmt_ms(r['lag_p99'])}, max {fmt_ms(r['lag_max'])}"),
        ("Where the lag goes (p50 / p99)",
         "; ".join(f"{name} {fmt_ms(v['p50'])} / {fmt_ms(v['p99'])}"
                   for name, v in r["lag_stages"].items())
         + " (running → recorded by the service → first attempt began → arrived)"),
        ("The lag p99 split: the status sync's phase + the rest",
         f"{phase:.2f} s + {r['lag_p99'] - phase:.2f} s: the first instance was recorded "
         f"{phase:.2f} s after the instant (the sync lists every poll interval, so this is "
         f"where in its interval the instant fell, plus one step), the p99 "
         f"{r['lag_p99'] - phase:.2f} s after that (the goal gives it 2 s; when a sync was "
         f"listing at the instant, the pages it had listed before wait for the next run, and "
         f"this part holds that interval too)"),
        *([(f"Every run of this command ({len(r['repeats'])}, in order): lag p99 "
            "(the sync's phase + the rest), floor",
            "; ".join(f"{lag:.2f} s ({phase:.2f} + {lag - phase:.2f}), {run_floor:.2f} ms"
                      for lag, phase, run_floor in r["repeats"])
            + f": **met in {sum(lag <= lag_goal for lag, _, _ in r['repeats'])} of "
            f"{len(r['repeats'])}**")] if r.get("repeats") else []),
        ("Burst wall time, advance → last webhook", f"{r['last_hook']:.2f} s"),
        ("Webhooks arrived per second after the advance",
         ", ".join(f"{s}-{s + 1} s: {count}" for s, count in r["per_second"].items())),
        ("Service CPU during the burst (advance → all webhooks in)",
         f"{r['cpu']:.1f} s, **{cpu_ms:.1f} ms/instance** = {cpu_ms / floor:.0f}x the floor; "
         f"busy {r['cpu'] / r['burst_wall']:.0%} of one core; less the background rate of "
         f"just before: {net_ms:.1f} ms/instance; API process "
         f"{r['api_cpu'] * 1000 / n:.1f} ms/instance, pipeline processes "
         f"({r['pipeline_processes']}) {(r['cpu'] - r['api_cpu']) * 1000 / n:.1f} ms/instance"),
        ("Floor, same run: service CPU per `GET /health/live`", f"{floor:.2f} ms"),
        (f"Service CPU just before the burst ({r['created']} instances, none running, "
         f"{args.idle_seconds:g} s quiet)",
         f"{r['idle_cpu_rate']:.0%} of one core (background work, e.g. the status sync)"),
        ("Rest of the machine during the burst",
         f"simulator {r['sim_cpu'] / r['burst_wall']:.0%} of one core; "
         + (f"PostgreSQL {r['database_cpu'] / r['burst_wall']:.0%} of one core "
            f"({r['database_cpu'] * 1000 / n:.1f} ms/instance); "
            if r.get("database_cpu") is not None else "")
         + "all processes "
         f"{r['machine_cpu'] / r['burst_wall']:.0%} of one core (2 cores shared)"),
        ("Upstream calls per instance during the burst (listing apart)",
         f"{sum(r['per_instance'].values()):.2f}: {calls}; account listing "
         f"`{LISTING}` {r['listing_calls']:.0f} calls"),
        ("Pipeline steps per instance during the burst",
         ", ".join(f"{k} {v / n:.2f}" for k, v in sorted(r["steps"].items())) or "none"),
        ("Webhook deferrals per instance during the burst, by reason",
         ", ".join(f"{k} {v / n:.2f}" for k, v in sorted(r["deferrals"].items())) or "none"),
        ("Mean wait from due to claimed, by pipeline",
         ", ".join(f"{k} {fmt_ms(v)}" for k, v in sorted(r["claim_wait"].items())) or "none"),
        ("Mean status sync run, by part",
         ", ".join(f"{k} {fmt_ms(v)}" for k, v in sorted(r["sync_parts"].items())) or "none"),
        ("Mean Novita call duration during the burst, by endpoint (as the service saw it)",
         ", ".join(f"`{k}` {fmt_ms(v)}" for k, v in sorted(r["upstream_wait"].items()))
         or "none"),
        ("Error lines in the service's logs, workers' included (whole run / during the burst)",
         ", ".join(f"`{k}` {total} / {r['log_errors_burst'].get(k, 0)}"
                   for k, total in sorted(r["log_errors"].items())) or "none"),
        ("Before the burst: POSTs (50 in flight), then until all had a Novita id",
         f"{r['posts']['seconds']:.1f} s, p50 {fmt_ms(r['posts']['p50'])}, p99 "
         f"{fmt_ms(r['posts']['p99'])}, statuses {r['posts']['statuses']}; ready "
         f"{r['ready']['since_first_post']:.1f} s after the first POST, upstream "
         f"{r['ready']['upstream']}"),
    ]  # fmt: skip
    if r["get"] is not None:
        g = r["get"]
        rows.append((f"`GET /api/instances/{{id}}` at {args.get_rate:g}/s during the burst",
                     f"p50 {fmt_ms(g['p50'])}, p99 {fmt_ms(g['p99'])} ({g['requests']} "
                     f"requests, statuses {g['statuses']}, errors {g['errors']})"))  # fmt: skip
    table = "\n".join(f"| {k} | {v} |" for k, v in rows)
    load = f"GETs at {args.get_rate:g}/s during the burst" if args.get_rate > 0 else "no GET load"
    if args.workers:
        load += (f"; beside it {args.workers} `novita-manager serve --role worker` process"
                 f"{'es' if args.workers > 1 else ''} (their pipelines claim rows beside the "
                 "service's child with `FOR UPDATE SKIP LOCKED`; their CPU counts as the "
                 "service's)")  # fmt: skip
    return f"""## Burst: {r["n"]:,} instances reach running at the same instant

Command: `{command}`
Machine: {machine()}. Date: {today()}.
Service (`novita-manager serve`, {args.database}) and simulator (time scale {args.time_scale:g})
as separate processes on 127.0.0.1; `INSTANCE_POLL_INTERVAL={args.poll_interval:g}`, {load}.
The creates go in first (a create takes 52 s of simulated time to run); once every instance
exists upstream and in the service, `POST /_simulator/clock {{"advance": {args.advance:g}}}`
moves the simulator's clock so that all of them are `running` at that instant.

| measure | result |
|---|---|
{table}

The lag runs from the wall-clock instant each instance became running (the advance: its
`statusSince` minus the clock's offset is earlier) to the arrival of its first
`instance.running` delivery at the receiver in the benchmark process. CPU and upstream calls
count from the advance until every webhook arrived and the service lists all as running.
"""


def one_burst(args: argparse.Namespace) -> dict[str, Any]:
    """One whole run: a fresh simulator, database and service, the creates, the burst."""
    with (
        stack_on_simulator(
            args.database, args.poll_interval, args.time_scale, webhooks=True
        ) as stack,
        contextlib.ExitStack() as extra,
        tempfile.TemporaryDirectory(prefix="nm-bench-workers-") as logs,
    ):
        assert stack.receiver is not None
        env = {
            "NOVITA_API_BASE_URL": stack.sim.base_url,
            "DATABASE_URL": stack.database_url,
            "INSTANCE_POLL_INTERVAL": str(args.poll_interval),
            "WEBHOOK_URL": stack.receiver.url,
        }
        started = [
            extra.enter_context(serving(env, ["--role", "worker"], Path(logs) / f"w{i}.log"))
            for i in range(args.workers)
        ]
        workers = tuple((worker.process.pid, worker.base_url) for worker in started)
        result = asyncio.run(measure(args, stack.service.base_url, stack.sim, stack.receiver,
                                     service_pid(stack.service), stack.database_url,
                                     workers))  # fmt: skip
        worker_errors = [
            line
            for log in sorted(Path(logs).glob("*.log"))
            for line in log.read_text(errors="replace").splitlines()
            if '"error"' in line
        ]
    result.update(_log_errors(stack.errors + worker_errors, result["window"]))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--poll-interval", type=float, default=1.0)
    parser.add_argument("--time-scale", type=float, default=1.0)
    parser.add_argument("--advance", type=float, default=90.0, help="simulated seconds")
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--get-rate", type=float, default=0.0, help="GETs/s during the burst")
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--idle-seconds", type=float, default=3.0)
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument(
        "--workers", type=int, default=0,
        help="extra `serve --role worker` processes beside the service (PostgreSQL: scale-out)",
    )  # fmt: skip
    parser.add_argument(
        "--repeat", type=int, default=1,
        help="whole runs in a row (a fresh stack each); the table is the last run's, with every "
        "run's lag and how many met the goal (one run on a shared machine decides little)",
    )  # fmt: skip
    parser.add_argument("--write-docs", action="store_true")
    args = parser.parse_args()
    steady_collector()  # its timings must not include its own collector's pauses
    if args.advance < STARTUP:
        raise SystemExit(f"--advance must be at least {STARTUP} (a create's startup)")
    if args.workers and args.database != "postgresql":
        raise SystemExit("--workers needs --database postgresql (SQLite admits one process)")
    runs = [one_burst(args) for _ in range(args.repeat)]
    result = runs[-1]
    if args.repeat > 1:
        result["repeats"] = [(run["lag_p99"], run["lag_stages"]["discovered"]["min"],
                              run["floor_cpu_ms"]) for run in runs]  # fmt: skip
    command = " ".join(["python -m bench.burst", *sys.argv[1:]])
    text = report(result, args, command)
    print(text)
    print(
        json.dumps({k: v for k, v in result.items() if k != "calls"}, default=str), file=sys.stderr
    )
    if args.write_docs:
        name = "burst" if args.database == "sqlite" else f"burst-{args.database}"
        write_section(name + (f"-{args.workers}-workers" if args.workers else ""), text)
        print("updated docs/benchmarks.md", file=sys.stderr)


if __name__ == "__main__":
    main()
