"""Reads benchmark: what one read costs the service, beside the framework's floor.

Usage: python -m bench.reads [--n 100] [--seconds 8] [--connections 10] [--open-rate 300]
       [--database sqlite|postgresql] [--write-docs]

Creates N instances (they run on the simulator), then, with the status sync going on as usual:
- closed loop with `wrk` (Debian package `wrk`) on `GET /health/live` (the floor: routing and
  middleware, no database), `GET /api/instances/{id}` and `GET /api/instances?limit=100`: the
  service's CPU per request (from /proc, so the load generator's CPU is not counted), requests
  per second and wrk's latency percentiles; each read's CPU is also given as a multiple of the
  floor measured in the same run, the figure that carries over to another machine;
- open loop at --open-rate requests/s on `GET /api/instances/{id}` from a separate process
  (bench.common.RateLoad): p50/p99 from the scheduled send time, and the answers' statuses.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import subprocess
import sys
import time
from typing import Any

import httpx

from bench.common import (
    RateLoad,
    cpu_seconds,
    fmt_ms,
    machine,
    service_on_simulator,
    service_pid,
    today,
    write_section,
)

GOALS = {  # issue 15
    "one_vs_floor": 2.0,  # GET /api/instances/{id} ≤ 2x the floor's CPU per request
    "list_ms": 3.0,  # GET /api/instances?limit=100 ≤ 3 ms CPU per request
    "open_p99_ms": 20.0,  # p99 at 300/s open loop (here without lifecycles: see lifecycle)
}


def wrk(url: str, seconds: float, connections: int) -> dict[str, Any]:
    """One wrk run: requests, requests/s, and latency p50/p99 (ms) from `--latency`."""
    done = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "--latency", url],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"wrk failed ({done.returncode}): {done.stdout}{done.stderr}")
    out = done.stdout
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]

    def percent(label: str) -> float:
        found = re.search(rf"^\s+{label}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if found is None:
            return float("nan")
        value, unit = float(found.group(1)), found.group(2)
        return value * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "requests": requests,
        "rate": rate,
        "p50_ms": percent("50"),
        "p99_ms": percent("99"),
        "non2xx": int(non2xx.group(1)) if non2xx else 0,
    }


def closed_loop(base: str, path: str, pid: int, seconds: float, connections: int) -> dict[str, Any]:
    wrk(base + path, 1, connections)  # warm up (connections, caches, compiled statements)
    cpu = cpu_seconds(pid)
    result = wrk(base + path, seconds, connections)
    result["cpu_ms"] = (cpu_seconds(pid) - cpu) * 1000 / max(result["requests"], 1)
    return result


async def create_running(base: str, n: int, timeout: float = 300) -> list[str]:
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        ids = []
        for index in range(n):
            body = {"name": f"reads-{index}", "productName": "RTX 4090 24GB", "templateId": "1"}
            response = await client.post("/api/instances", json=body)
            response.raise_for_status()
            ids.append(response.json()["instanceId"])
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            listed = await client.get("/api/instances", params={"status": "running", "limit": 1})
            if listed.json()["total"] >= n:
                return ids
            await asyncio.sleep(0.5)
    raise SystemExit(f"timed out waiting for {n} running instances")


def open_loop(base: str, path: str, rate: float, seconds: float) -> dict[str, Any]:
    load = RateLoad(base, rate).start()
    load.add(path)
    time.sleep(seconds)
    result = load.stop()
    return {
        "rate": rate,
        "answers": result["requests"],
        "p50": result["p50"],
        "p99": result["p99"],
        "statuses": result["statuses"],
        "late": result["late"],
    }


def report(r: dict[str, Any], args: argparse.Namespace, command: str) -> str:
    floor = r["floor"]["cpu_ms"]

    def row(label: str, m: dict[str, Any], goal: str = "") -> str:
        return (
            f"| {label} | {m['cpu_ms']:.3f} ms | {m['cpu_ms'] / floor:.2f}x | {m['rate']:.0f}/s "
            f"| {m['p50_ms']:.2f} / {m['p99_ms']:.2f} ms | {m['non2xx']} | {goal} |"
        )

    one_ok = r["one"]["cpu_ms"] / floor <= GOALS["one_vs_floor"]
    list_ok = r["list"]["cpu_ms"] <= GOALS["list_ms"]
    o = r["open"]
    open_ok = o["p99"] * 1000 <= GOALS["open_p99_ms"]
    return "\n".join(
        [
            "## Reads (issue 15)",
            "",
            f"`{command}` · {today()} · {machine()} · {args.database} · {args.n} instances "
            f"running, status sync every {args.poll_interval:g} s during the measurement · wrk "
            f"{args.connections} connections x {args.seconds:g} s per row · load average "
            f"{r['load'][0]:.1f} before and {r['load'][1]:.1f} after (other work on the machine "
            "takes cores: the multiples of the floor are the figures to compare)",
            "",
            "| request | service CPU per request | x floor | requests/s | wrk p50 / p99 "
            "| non-2xx | goal |",
            "|---|---|---|---|---|---|---|",
            row("`GET /health/live` (the floor)", r["floor"]),
            row(
                "`GET /api/instances/{id}`",
                r["one"],
                f"≤ {GOALS['one_vs_floor']:g}x floor: {'met' if one_ok else 'NOT met'}",
            ),
            row(
                "`GET /api/instances?limit=100`",
                r["list"],
                f"≤ {GOALS['list_ms']:g} ms: {'met' if list_ok else 'NOT met'}",
            ),
            "",
            f"Open loop, `GET /api/instances/{{id}}` at {o['rate']:g}/s for {args.seconds:g} s "
            f"(separate load process): p50 {fmt_ms(o['p50'])}, p99 {fmt_ms(o['p99'])} "
            f"(goal p99 < {GOALS['open_p99_ms']:g} ms without lifecycles: "
            f"{'met' if open_ok else 'NOT met'}), statuses {o['statuses']}, "
            f"{o['late']} sends late by > 50 ms. The same rate during 1,000 lifecycles is in the "
            "lifecycle section.",
            "",
            "Requests per second are wrk's closed loop on one core's worth of service; the CPU per "
            "request is what carries over between machines, as a multiple of the floor. The "
            "service runs with `API_MAX_LOOP_LAG=0` (no shedding by loop lag: on a shared machine "
            "its cheap refusals would lower the CPU per request measured).",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--connections", type=int, default=10)
    parser.add_argument("--open-rate", type=float, default=300.0)
    parser.add_argument("--poll-interval", type=float, default=1.0)
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--write-docs", action="store_true")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install wrk")
    # Shedding by loop lag off: on a shared machine the loop runs late when other work takes the
    # cores, and the cheap refusals would lower the CPU per request measured (10 connections stay
    # below API_MAX_READS_IN_FLIGHT, so nothing else is refused; non-2xx says so).
    load_before = os.getloadavg()[0]
    with service_on_simulator(args.database, args.poll_interval, API_MAX_LOOP_LAG="0") as service:
        base, pid = service.base_url, service_pid(service)
        ids = asyncio.run(create_running(base, args.n))
        one = f"/api/instances/{ids[len(ids) // 2]}"
        result = {
            "floor": closed_loop(base, "/health/live", pid, args.seconds, args.connections),
            "one": closed_loop(base, one, pid, args.seconds, args.connections),
            "list": closed_loop(
                base, "/api/instances?limit=100", pid, args.seconds, args.connections
            ),
            "open": open_loop(base, one, args.open_rate, args.seconds),
            "load": (load_before, os.getloadavg()[0]),
        }
    command = " ".join(["python -m bench.reads", *sys.argv[1:]])
    text = report(result, args, command)
    print(text)
    if args.write_docs:
        name = "reads" if args.database == "sqlite" else f"reads-{args.database}"
        write_section(name, text)
        print("updated docs/benchmarks.md", file=sys.stderr)


if __name__ == "__main__":
    main()
