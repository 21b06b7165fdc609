"""Spot life benchmark: N spot instances through a simulated day of random reclaims.

Usage: python -m bench.spot_life [--n 100] [--reclaims-per-day 3] [--time-scale 0.002]
       [--poll-interval 1] [--lead 60] [--database sqlite|postgresql] [--write-docs]

The service and the simulator run as separate processes on 127.0.0.1. N spot instances are
created with `onReclaim` cycling through restart, migrate and recreate (maxRecoveries high
enough never to give up, RECOVERY_BACKOFF 0 so that what is measured is the recovery itself).
Once all run, a simulated day passes (86,400 simulated seconds, i.e. 86,400 x time scale real
seconds): reclaims arrive as a Poisson process (on average --reclaims-per-day per instance),
each on a random instance that runs at that moment, with --lead simulated seconds of notice,
through the simulator's control API. Reported:
- time from the reclaim (the moment the instance is taken, `exited`) to `instance.recovered`
  (the webhook's own timestamp), p50/p99, also in poll intervals, by policy;
- duplicates: the simulator's live record (instances carrying one marker live at once, taken
  at every create and delete), which must never exceed 1;
- extra upstream calls per recovery, by endpoint, beyond the account listing (shown apart);
- service CPU per recovery, beside the /health/live floor of the same run (bench/common.py).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
from datetime import datetime
from typing import Any

import httpx
from tests.fixtures.webhook_receiver import WebhookReceiver

from bench.common import (
    cpu_seconds,
    floor_cpu_ms,
    machine,
    percentile,
    service_pid,
    stack_on_simulator,
    today,
    write_section,
)
from novita_manager.simulator.config import SPOT_RECLAIMING
from novita_manager.simulator.control_client import AsyncSimulatorControl

POLICIES = ("restart", "migrate", "recreate")
DAY = 86_400.0
LISTING = "GET /gpu/instances"
CATALOGUE = {"GET /clusters", "GET /products", "GET /template", "GET /templates"}


def epoch(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def calls(stats: dict[str, Any]) -> dict[str, int]:
    return {endpoint: sum(outcomes.values()) for endpoint, outcomes in stats["calls"].items()}


def hooks(receiver: WebhookReceiver) -> list[dict[str, Any]]:
    return [json.loads(request.body) for request in receiver.requests()]


async def create_all(client: httpx.AsyncClient, n: int) -> dict[str, str]:
    """POST n spot instances; returns id -> policy."""
    policies: dict[str, str] = {}
    limit = asyncio.Semaphore(20)

    async def one(index: int) -> None:
        policy = POLICIES[index % len(POLICIES)]
        body = {
            "name": f"spot-{index}",
            "productName": "RTX 4090 24GB",
            "templateId": "1",
            "onReclaim": policy,
            "maxRecoveries": 100,
            "regions": ["CN-HK-01", "AS-SGP-02"],
        }
        async with limit:
            response = await shed_retry(
                lambda: client.post(
                    "/api/instances", json=body, headers={"Idempotency-Key": f"spot-{index}"}
                )
            )
        response.raise_for_status()
        policies[response.json()["instanceId"]] = policy

    await asyncio.gather(*(one(i) for i in range(n)))
    return policies


async def shed_retry(send: Any) -> httpx.Response:
    """Send again after a 503 (the service sheds load on a busy machine: api/admission.py);
    POSTs carry an Idempotency-Key, so a repeat creates nothing new."""
    for _ in range(50):
        response: httpx.Response = await send()
        if response.status_code != 503:
            return response
        await asyncio.sleep(0.2)
    return response


async def views(client: httpx.AsyncClient) -> dict[str, dict[str, Any]]:
    response = await shed_retry(lambda: client.get("/api/instances", params={"limit": 500}))
    response.raise_for_status()
    return {view["id"]: view for view in response.json()["instances"]}


async def wait_all(client: httpx.AsyncClient, ids: set[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        current = await views(client)
        if all(current[i]["status"] == "running" for i in ids):
            return
        if time.monotonic() > deadline:
            states = sorted({current[i]["status"] for i in ids})
            raise SystemExit(f"not all running after {timeout} s: {states}")
        await asyncio.sleep(0.5)


async def day_of_reclaims(
    client: httpx.AsyncClient,
    sim: AsyncSimulatorControl,
    ids: list[str],
    args: argparse.Namespace,
) -> list[tuple[str, float]]:
    """Reclaim random running instances at Poisson times over a simulated day; returns
    (instance id, the moment it is taken) for every reclaim made."""
    rng = random.Random(args.seed)
    scale = args.time_scale
    rate = args.reclaims_per_day * len(ids) / DAY  # per simulated second
    made: list[tuple[str, float]] = []
    began = time.monotonic()
    moment = rng.expovariate(rate)
    while moment < DAY:
        delay = began + moment * scale - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        current = await views(client)
        running = [i for i in ids if current[i]["status"] == "running"]
        if running:
            target = rng.choice(running)
            before = time.time()
            try:
                await sim.reclaim(current[target]["novitaInstanceId"], lead_time=args.lead)
            except httpx.HTTPStatusError:
                pass  # taken meanwhile (status moved on since the listing)
            else:
                made.append((target, before + (args.lead + SPOT_RECLAIMING) * scale))
        moment += rng.expovariate(rate)
    return made


async def measure(args: argparse.Namespace, base_url: str, sim_root: str, pid: int,
                  receiver: WebhookReceiver) -> dict[str, Any]:  # fmt: skip
    sim = AsyncSimulatorControl(sim_root)
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        policies = await create_all(client, args.n)
        ids = sorted(policies)
        await wait_all(client, set(ids), 300)
        floor = await floor_cpu_ms(base_url, pid)
        before_calls, before_cpu = calls(await sim.stats()), cpu_seconds(pid)
        began = time.monotonic()
        made = await day_of_reclaims(client, sim, ids, args)
        # the last reclaims recover: wait for every instance to run again
        await asyncio.sleep((args.lead + SPOT_RECLAIMING) * args.time_scale)
        await wait_all(client, set(ids), 300)
        wall = time.monotonic() - began
        after_calls, cpu = calls(await sim.stats()), cpu_seconds(pid) - before_cpu
        record = await sim.live()
        final = await views(client)
    await sim.aclose()
    await asyncio.sleep(1.0)  # the last webhooks
    bodies = hooks(receiver)
    recovered: dict[str, list[float]] = {}
    for body in bodies:
        if body["type"] == "instance.recovered":
            recovered.setdefault(body["data"]["instanceId"], []).append(epoch(body["timestamp"]))
    pending: dict[str, list[float]] = {}
    for iid, taken in made:
        pending.setdefault(iid, []).append(taken)
    times: dict[str, list[float]] = {policy: [] for policy in POLICIES}
    for iid, taken_list in pending.items():
        for taken, back in zip(sorted(taken_list), sorted(recovered.get(iid, [])), strict=False):
            times[policies[iid]].append(back - taken)
    delta = {e: after_calls.get(e, 0) - before_calls.get(e, 0) for e in after_calls}
    return {
        "policies": policies,
        "made": len(made),
        "recovered": sum(len(v) for v in recovered.values()),
        "failed": sum(1 for b in bodies if b["type"] == "instance.failed"),
        "times": times,
        "max_live": max(record["maxLive"].values()),
        "duplicates": sum(1 for value in record["maxLive"].values() if value > 1),
        "moments": record["moments"],
        "calls": delta,
        "cpu": cpu,
        "wall": wall,
        "floor": floor,
        "recoveries_view": sum(view["recoveries"] for view in final.values()),
    }


def report(r: dict[str, Any], args: argparse.Namespace, command: str) -> str:
    every = [t for values in r["times"].values() for t in values]
    recoveries = max(r["recovered"], 1)
    poll = args.poll_interval
    lines = [
        "## Spot life: random reclaims over a simulated day (issue 16)",
        "",
        f"`{command}` — {today()}, {machine()}.",
        "",
        f"{args.n} spot instances (onReclaim cycling restart / migrate / recreate, regions "
        f"CN-HK-01 then AS-SGP-02, RECOVERY_BACKOFF 0), a simulated day at time scale "
        f"{args.time_scale:g} ({DAY * args.time_scale:.0f} s real), reclaims as a Poisson "
        f"process ({args.reclaims_per_day:g} per instance per day on average, on running "
        f"instances, {args.lead:g} simulated s of notice), poll interval {poll:g} s, "
        f"{args.database}.",
        "",
        "| measure | value |",
        "|---|---|",
        f"| reclaims made / `instance.recovered` / `instance.failed` | {r['made']} / "
        f"{r['recovered']} / {r['failed']} |",
        f"| reclaim → running again, p50 | {percentile(every, 50):.2f} s "
        f"({percentile(every, 50) / poll:.2f} poll intervals) |",
        f"| reclaim → running again, p99 | {percentile(every, 99):.2f} s "
        f"({percentile(every, 99) / poll:.2f} poll intervals) |",
        f"| duplicates (managed instances ever with 2+ live Novita instances) | "
        f"{r['duplicates']} (max live per instance {r['max_live']}, over {r['moments']} "
        "creates and deletes recorded) |",
        f"| service CPU per recovery | {r['cpu'] * 1000 / recoveries:.1f} ms "
        f"(the /health/live floor: {r['floor']:.2f} ms per request; includes the day's syncs) |",
        f"| listing pages (`{LISTING}`) during the day | {r['calls'].get(LISTING, 0)} "
        f"({r['calls'].get(LISTING, 0) / max(r['wall'] / poll, 1):.2f} per poll interval: "
        "every sync reads all pages, plus the early looks after upstream calls) |",
        "",
        "By policy (reclaim → `instance.recovered`):",
        "",
        "| policy | recoveries | p50 | p99 | max |",
        "|---|---|---|---|---|",
    ]
    for policy in POLICIES:
        values = r["times"][policy]
        if values:
            lines.append(
                f"| {policy} | {len(values)} | {percentile(values, 50):.2f} s | "
                f"{percentile(values, 99):.2f} s | {max(values):.2f} s |"
            )
    extra = {
        endpoint: count
        for endpoint, count in sorted(r["calls"].items())
        if endpoint != LISTING and endpoint not in CATALOGUE and count
    }
    lines += [
        "",
        "Extra upstream calls per recovery (all policies together; the listing is apart): "
        + ", ".join(f"`{e}` {c / recoveries:.2f}" for e, c in extra.items())
        + f"; total {sum(extra.values()) / recoveries:.2f}. A restart is a start that Novita "
        "refuses for a reclaimed node, then a migrate; a migrate is one call; a recreate is a "
        "delete and a create; each recovery that reaches running also makes one GET for the "
        "connection details.",
        "",
        "Novita's own part of a recovery is fast here (migrate "
        f"{(20 + 45) * args.time_scale:.2f} s, create {(2 + 5 + 45) * args.time_scale:.2f} s at "
        "this time scale), so the figures are the service's: noticing the reclaim (up to one "
        "poll interval and the sync's coalescing gap) and seeing it run again (the early look "
        "after the upstream call, else the next interval).",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--reclaims-per-day", type=float, default=3.0)
    parser.add_argument("--time-scale", type=float, default=0.002)
    parser.add_argument("--poll-interval", type=float, default=1.0)
    parser.add_argument("--lead", type=float, default=60.0, help="simulated seconds of notice")
    parser.add_argument("--seed", type=int, default=16)
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--write-docs", action="store_true")
    args = parser.parse_args()
    with stack_on_simulator(
        args.database, args.poll_interval, args.time_scale, webhooks=True,
        env={"RECOVERY_BACKOFF": "0"},
    ) as stack:  # fmt: skip
        assert stack.receiver is not None
        result = asyncio.run(measure(args, stack.service.base_url, stack.sim.root_url,
                                     service_pid(stack.service), stack.receiver))  # fmt: skip
    command = " ".join(["python -m bench.spot_life", *sys.argv[1:]])
    text = report(result, args, command)
    print(text)
    if args.write_docs:
        write_section("spot-life" if args.database == "sqlite" else "spot-life-postgresql", text)
        print("updated docs/benchmarks.md", file=sys.stderr)


if __name__ == "__main__":
    main()
