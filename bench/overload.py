"""Overload benchmark: lifecycles while reads are offered at twice what the process can serve.

Usage: python -m bench.overload [--n 200] [--poll-interval 1] [--factor 2] [--probe-rate 50]
       [--database sqlite|postgresql] [--write-docs]

1. Measures the read capacity of the service (`wrk` closed loop on `GET /api/instances/{id}`
   with 100 instances running) and the floor (`GET /health/live`) in the same run.
2. Runs N lifecycles (create → running → `instance.running` webhook) without read load: the
   unloaded wall time.
3. Runs N more while `wrk` (C, so its own CPU is small beside the service's) offers about
   `--factor` x capacity reads per second: 64 connections, each waiting a fixed delay between
   an answer and its next request (a Lua `delay()`), so the rate offered stays near the target
   whether reads are answered or refused. Beside it, a light open-loop probe
   (bench.common.RateLoad, its own process, `--probe-rate` reads per second on the same path)
   measures latency from each read's scheduled send to its answer, and counts its own late
   sends: its figures are the answered reads' latency only when it kept its schedule. Reported:
   the loaded wall time, the probe's answered and refused latencies, wrk's totals, and the shed
   counter from /metrics.
Goals (issue 15): loaded lifecycles at ≥ 80 % of the unloaded speed, the excess refused early
with 503 + Retry-After, the answered reads' p99 < 100 ms.

The Python generator used before (one process offering all the load) fell seconds behind at
5,000/s on this 2-core machine, so its latencies measured itself as much as the service.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import resource
import signal
import subprocess
import sys
import tempfile
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
    service_pid,
    stack_on_simulator,
    steady_collector,
    today,
    write_section,
)
from bench.reads import wrk

GOALS = {"speed": 0.8, "p99_ms": 100.0}
LOAD_CONNECTIONS = 256  # with the probe's and the creates', below HTTP_MAX_CONNECTIONS (500)
PACED = 'local d = tonumber(os.getenv("WRK_DELAY_MS")); function delay() return d end\n'


class PacedLoad:
    """`wrk` on one path until `stop()`: LOAD_CONNECTIONS connections, each pausing `delay_ms`
    between an answer and its next request, so about LOAD_CONNECTIONS / (pause + answer time)
    requests per second (`paced_load` picks the pause for a rate)."""

    def __init__(self, url: str, delay_ms: int) -> None:
        self.delay_ms = delay_ms
        script = tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False)  # noqa: SIM115
        script.write(PACED)
        script.close()
        self.script = Path(script.name)
        self.started = time.perf_counter()
        self.process = subprocess.Popen(
            ["wrk", "-t1", f"-c{LOAD_CONNECTIONS}", "-d3600s", "-s", str(self.script), url],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={"WRK_DELAY_MS": str(self.delay_ms), "PATH": "/usr/bin:/bin"},
        )

    def stop(self) -> dict[str, Any]:
        """Interrupt wrk (it prints its totals) and return requests, non-2xx and the rate."""
        seconds = time.perf_counter() - self.started
        self.process.send_signal(signal.SIGINT)
        out, _ = self.process.communicate(timeout=30)
        self.script.unlink(missing_ok=True)
        requests = re.search(r"(\d+) requests in", out)
        non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
        if requests is None:
            raise SystemExit(f"wrk printed no totals: {out}")
        total = int(requests.group(1))
        return {
            "requests": total,
            "non2xx": int(non2xx.group(1)) if non2xx else 0,
            "rate": total / seconds,
            "delay_ms": self.delay_ms,
        }


def create_body(prefix: str, index: int) -> dict[str, Any]:
    return {"name": f"{prefix}-{index}", "productName": "RTX 4090 24GB", "templateId": "1"}


async def lifecycles(base: str, receiver: WebhookReceiver, prefix: str, n: int) -> dict[str, Any]:
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
                    "create_mean": sum(latencies) / len(latencies),
                }
            if time.perf_counter() - began > 900:
                raise SystemExit(f"timed out: {len(ids & running)} of {n} running")
            await asyncio.sleep(0.1)


def paced_load(url: str, rate: float) -> PacedLoad:
    """A PacedLoad at about `rate`/s while answers are fast (refusals are): each connection
    pauses LOAD_CONNECTIONS / rate. Answers that take long lower the rate actually offered (the
    report gives it); shortening the pause to make up for them (tried: measured in a first run)
    turned the load into a flood as soon as the process fell behind."""
    return PacedLoad(url, max(1, round(LOAD_CONNECTIONS / rate * 1000)))


def shed_by_reason(base: str) -> dict[str, float]:
    """`novita_manager_requests_shed_total` by reason, from the service's /metrics."""
    text = httpx.get(f"{base}/metrics", timeout=10).text
    return {
        reason: float(value)
        for reason, value in re.findall(
            r'^novita_manager_requests_shed_total\{reason="([^"]*)"\} ([\d.e+]+)$', text, re.M
        )
    }


def create_time_served(base: str) -> tuple[float, float]:
    """(seconds, count) of `POST /api/instances` in the service's latency histogram: the time
    from the app's outer middleware to the answer, without the wait before the app saw it."""
    text = httpx.get(f"{base}/metrics", timeout=10).text
    found = dict(
        re.findall(
            r"^novita_manager_http_request_duration_seconds_(sum|count)"
            r'\{method="POST",route="/api/instances"\} ([\d.e+]+)$',
            text,
            re.M,
        )
    )
    return float(found.get("sum", 0.0)), float(found.get("count", 0.0))


def own_cpu_seconds(pid: int) -> float:
    """CPU seconds of one process, without its children (the API process of `serve`)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def machine_ticks() -> tuple[int, int]:
    """(busy, total) clock ticks of all cores since boot, from the `cpu` line of /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return sum(fields) - fields[3] - fields[4], sum(fields)


def postmaster_pid(database_url: str) -> int | None:
    """The PostgreSQL server behind `database_url` (a throwaway one of bench.common.database),
    found by its port in the data directory's postmaster.pid; None on SQLite."""
    port = re.search(r"@[^:/]+:(\d+)/", database_url)
    if port is None:
        return None
    for pidfile in Path(tempfile.gettempdir()).glob("nm-pg-*/data/postmaster.pid"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            lines = pidfile.read_text().splitlines()
            if lines[3].strip() == port.group(1):
                return int(lines[0])
    return None


def cpu_by_process(pids: dict[str, int | None]) -> dict[str, float]:
    """CPU seconds so far of each role: the API process alone, and the others with their
    children (the pipeline process, the simulator, PostgreSQL's server and its backends); the
    benchmark's own process (creates, webhook receiver) from its rusage."""
    found = {
        name: own_cpu_seconds(pid) if name == "api" else cpu_seconds(pid)
        for name, pid in pids.items()
        if pid is not None
    }
    usage = resource.getrusage(resource.RUSAGE_SELF)
    found["bench"] = usage.ru_utime + usage.ru_stime
    return found


def profile(pids: dict[str, int], folder: Path) -> list[subprocess.Popen[bytes]]:
    """py-spy (the venv's) sampling each process at 200 Hz until stopped with SIGINT; raw
    stack counts into `folder/<name>.raw`."""
    spy = Path(sys.executable).with_name("py-spy")
    folder.mkdir(parents=True, exist_ok=True)
    return [
        subprocess.Popen(
            [str(spy), "record", "-p", str(pid), "-r", "200", "-f", "raw", "-o",
             str(folder / f"{name}.raw")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for name, pid in pids.items()
    ]  # fmt: skip


def run(
    args: argparse.Namespace,
    base: str,
    pid: int,
    receiver: WebhookReceiver,
    others: dict[str, int | None],
) -> dict[str, Any]:
    # The probe's process starts now and idles until it gets its path: a spawned process takes
    # seconds to import on a busy machine, and its schedule must hold from the first read.
    probe = RateLoad(base, args.probe_rate, connections=8).start()
    load_before = os.getloadavg()[0]
    ids = asyncio.run(prepare(base, receiver))
    one = f"/api/instances/{ids[0]}"
    wrk(f"{base}/health/live", 1, 10)  # warm the connections
    cpu = cpu_seconds(pid)
    floor = wrk(f"{base}/health/live", 5, 10)
    floor["cpu_ms"] = (cpu_seconds(pid) - cpu) * 1000 / max(floor["requests"], 1)
    cpu = cpu_seconds(pid)
    capacity = wrk(base + one, 5, 10)
    capacity["cpu_ms"] = (cpu_seconds(pid) - cpu) * 1000 / max(capacity["requests"], 1)
    pipeline = next((p for p in process_tree(pid) if p != pid), None)
    pids = {"api": pid, "pipeline": pipeline, **others}
    before, served = cpu_by_process(pids), create_time_served(base)
    unloaded = asyncio.run(lifecycles(base, receiver, "calm", args.n))
    after, served_after = cpu_by_process(pids), create_time_served(base)
    unloaded["cpu"] = {k: v - before[k] for k, v in after.items()}
    unloaded["served"] = (served_after[0] - served[0]) / max(served_after[1] - served[1], 1)
    offered = args.factor * capacity["rate"]
    shed_before = shed_by_reason(base)
    load = paced_load(base + one, offered)
    probe.add(one)
    time.sleep(1)  # the load is on before the lifecycles start
    generators = [load.process.pid, probe.pid()]
    api_cpu, all_cpu = own_cpu_seconds(pid), cpu_seconds(pid)
    gen_cpu = sum(cpu_seconds(g) for g in generators)
    ticks = machine_ticks()
    spies = (
        profile({"api": pid, "pipeline": pipeline}, Path(args.profile))
        if args.profile and pipeline
        else []
    )
    served = create_time_served(base)
    before = cpu_by_process({**pids, **dict(zip(["wrk", "probe"], generators, strict=True))})
    loaded = asyncio.run(lifecycles(base, receiver, "busy", args.n))
    after = cpu_by_process({**pids, **dict(zip(["wrk", "probe"], generators, strict=True))})
    loaded["cpu"] = {k: v - before[k] for k, v in after.items()}
    served_after = create_time_served(base)
    loaded["served"] = (served_after[0] - served[0]) / max(served_after[1] - served[1], 1)
    for spy in spies:
        spy.send_signal(signal.SIGINT)
        spy.wait(timeout=60)
    api_cpu, all_cpu = own_cpu_seconds(pid) - api_cpu, cpu_seconds(pid) - all_cpu
    gen_cpu = sum(cpu_seconds(g) for g in generators) - gen_cpu
    busy = machine_ticks()
    machine_busy = (busy[0] - ticks[0]) / max(busy[1] - ticks[1], 1)
    reads = probe.stop()
    offered_load = load.stop()
    shed_after = shed_by_reason(base)
    return {
        "floor": floor,
        "capacity": capacity,
        "offered": offered,
        "unloaded": unloaded,
        "loaded": loaded,
        "reads": reads,
        "load": offered_load,
        "load_average": (load_before, os.getloadavg()[0]),
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
    probe, load = r["reads"], r["load"]
    probed = sum(probe["statuses"].values())
    probe_ok = probe["statuses"].get(200, 0)
    probe_refused = probe["statuses"].get(503, 0)
    others = {k: v for k, v in probe["statuses"].items() if k not in (200, 503)}
    ok = probe["by_status"].get(200, {"p50": float("nan"), "p99": float("nan")})
    no = probe["by_status"].get(503, {"p50": float("nan"), "p99": float("nan")})
    shed = sum(r["shed"].values())
    refused = load["non2xx"] + probe_refused
    sound = probe["late"] <= max(1, probed // 100)  # the probe kept its schedule (≤ 1 % late)
    met = {
        "speed": speed >= GOALS["speed"],
        "shed": refused > 0 and shed >= refused,
        "p99": sound and ok["p99"] * 1000 < GOALS["p99_ms"],
    }
    floor, capacity = r["floor"], r["capacity"]
    reasons = ", ".join(f"{k} {v:.0f}" for k, v in sorted(r["shed"].items()) if v)
    offered_total = load["requests"] + probed
    return "\n".join(
        [
            f"## Overload (issue 15){'' if args.database == 'sqlite' else ': PostgreSQL'}",
            "",
            f"`{command}` · {today()} · {machine()} · {args.database} · poll interval "
            f"{args.poll_interval:g} s · `serve` as {r['processes']} processes (the API, and "
            f"the pipelines in its child) · load average {r['load_average'][0]:.1f} before "
            f"and {r['load_average'][1]:.1f} after (other work on the machine takes cores)",
            "",
            "| measure | result | goal |",
            "|---|---|---|",
            f"| floor: `GET /health/live`, wrk 10 connections | {floor['rate']:.0f}/s, "
            f"{floor['cpu_ms']:.3f} ms CPU each | |",
            f"| capacity: `GET /api/instances/{{id}}`, wrk 10 connections | "
            f"{capacity['rate']:.0f}/s, {capacity['cpu_ms']:.3f} ms CPU each "
            f"({capacity['cpu_ms'] / floor['cpu_ms']:.2f}x floor) | |",
            f"| {args.n} lifecycles, no read load | {calm['seconds']:.1f} s (creates answered in "
            f"{calm['creates']:.1f} s, p99 {fmt_ms(calm['create_p99'])}; mean "
            f"{fmt_ms(calm['create_mean'])}, of it in the app {fmt_ms(calm['served'])}) | |",
            f"| {args.n} lifecycles, reads offered at {args.factor:g}x capacity "
            f"({r['offered']:.0f}/s asked; wrk sent {load['rate']:.0f}/s, {LOAD_CONNECTIONS} "
            f"connections pausing {load['delay_ms']} ms, and the probe {args.probe_rate:g}/s) "
            f"| {busy['seconds']:.1f} s: **{speed:.0%}** of the unloaded speed (creates "
            f"answered in {busy['creates']:.1f} s, p99 {fmt_ms(busy['create_p99'])}; mean "
            f"{fmt_ms(busy['create_mean'])}, of it in the app {fmt_ms(busy['served'])}) "
            f"| ≥ 80 %: {'met' if met['speed'] else 'NOT met'} |",
            f"| reads answered / refused with 503 + Retry-After (wrk and the probe) "
            f"| {offered_total - refused} / {refused} (shed counter in /metrics +{shed:.0f}: "
            f"{reasons or 'none'}; the probe's other answers: {others}) "
            f"| excess refused and counted: {'met' if met['shed'] else 'NOT met'} |",
            f"| answered reads, the probe's {probe_ok} of {probed}: from scheduled send to "
            f"answer | p50 {fmt_ms(ok['p50'])}, p99 {fmt_ms(ok['p99'])} "
            f"| p99 < {GOALS['p99_ms']:g} ms: {'met' if met['p99'] else 'NOT met'} |",
            f"| refused reads, the probe's {probe_refused}: from scheduled send to answer "
            f"| p50 {fmt_ms(no['p50'])}, p99 {fmt_ms(no['p99'])} | |",
            f"| CPU during the loaded lifecycles | API process {r['api_cpu']:.1f} s "
            f"({r['api_cpu'] * 1000 / max(offered_total, 1):.3f} ms per read offered), pipeline "
            f"process {r['worker_cpu']:.1f} s, the load (wrk and the probe) "
            f"{r['generator_cpu']:.1f} s, over {busy['seconds']:.1f} s; the machine's cores "
            f"were {r['machine_busy']:.0%} busy (every process on it) | |",
            f"| CPU by process, no read load / reads at {args.factor:g}x (seconds over the "
            "lifecycles; `bench`: the creates' client and the webhook receiver) | "
            + ", ".join(
                f"{name} {calm['cpu'].get(name, 0.0):.1f} / {busy['cpu'][name]:.1f}"
                for name in busy["cpu"]
            )
            + " | |",
            "",
            "What is measured: wrk offers the load and its totals count the answers; the "
            "latencies are the probe's, a separate open-loop process sending "
            f"{args.probe_rate:g} reads/s on the same path among wrk's, timed from each "
            "read's scheduled send (so a wait for a connection counts). The probe sent "
            f"{probe['late']} of {probed} reads more than 50 ms after their scheduled time: "
            + (
                "it kept its schedule, so its latencies are the service's."
                if sound
                else "more than 1 %, so its latencies include its own delay (the goal is not "
                "judged on them)."
            ),
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--poll-interval", type=float, default=1.0)
    parser.add_argument("--factor", type=float, default=2.0)
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--probe-rate", type=float, default=50.0)
    parser.add_argument(
        "--env", action="append", default=[], help="KEY=VALUE for the service (repeatable)"
    )
    parser.add_argument(
        "--profile", help="folder for py-spy raw profiles of the loaded lifecycles (api, pipeline)"
    )
    parser.add_argument("--write-docs", action="store_true")
    args = parser.parse_args()
    steady_collector()  # its timings must not include its own collector's pauses
    extra = dict(item.split("=", 1) for item in args.env)
    receiver = WebhookReceiver()
    receiver.start()
    try:
        with stack_on_simulator(
            args.database, args.poll_interval, env={"WEBHOOK_URL": receiver.url, **extra}
        ) as stack:
            assert stack.sim.process is not None
            others = {
                "simulator": stack.sim.process.pid,
                "postgresql": postmaster_pid(stack.database_url),
            }
            result = run(args, stack.service.base_url, service_pid(stack.service), receiver, others)
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
