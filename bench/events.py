"""Live events (issue 18): what open streams cost the service, and how late events reach them.

Usage: python -m bench.events [--streams 200] [--instances 20] [--database sqlite|postgresql]

A service process on a simulator process (time scale 0.01). First its idle CPU over 10 s with
no stream, then with `--streams` streams open (`GET /api/events`, default settings: a poll every
0.5 s, a heartbeat every 15 s). Then `--instances` creates; every stream must receive the same
events, in the same order; the lag of an event is from its `timestamp` (when the service wrote
it) to its arrival at a stream, over every event on every stream.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

import httpx

from bench.common import cpu_seconds, fmt_ms, percentile, service_on_simulator, service_pid
from novita_manager.sdk import AsyncManagerClient, StreamEvent


def arrival_lag(event: StreamEvent, arrived: float) -> float:
    stamp = str(event.body.get("timestamp") or "").replace("Z", "+00:00")
    from datetime import datetime

    return arrived - datetime.fromisoformat(stamp).timestamp()


async def follow(
    base_url: str, sink: list[tuple[StreamEvent, float]], ready: asyncio.Event
) -> None:
    async with AsyncManagerClient(base_url, timeout=30) as client:
        async for event in client.events(on_position=lambda _position: ready.set()):
            sink.append((event, time.time()))


async def idle_cpu(pid: int, seconds: float) -> float:
    before = cpu_seconds(pid)
    await asyncio.sleep(seconds)
    return (cpu_seconds(pid) - before) / seconds


async def run(base_url: str, pid: int, streams: int, instances: int) -> dict[str, Any]:
    result: dict[str, Any] = {"idle_cpu_no_stream": await idle_cpu(pid, 10)}
    sinks: list[list[tuple[StreamEvent, float]]] = [[] for _ in range(streams)]
    ready = [asyncio.Event() for _ in range(streams)]
    tasks = [asyncio.create_task(follow(base_url, sinks[i], ready[i])) for i in range(streams)]
    await asyncio.wait_for(asyncio.gather(*(r.wait() for r in ready)), 60)
    result["idle_cpu_with_streams"] = await idle_cpu(pid, 10)
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
        ids = []
        for index in range(instances):
            body = {"name": f"ev-{index}", "productName": "RTX 4090 24GB", "templateId": "1"}
            response = await http.post("/api/instances", json=body)
            ids.append(response.json()["instanceId"])
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            running = sum(
                1 for sink in sinks[:1] for event, _ in sink if event.type == "instance.running"
            )
            if running >= instances:
                break
            await asyncio.sleep(0.2)
    await asyncio.sleep(1.0)  # the last events reach every stream
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    sequences = {tuple(event.id for event, _ in sink) for sink in sinks}
    lags = [arrival_lag(event, arrived) for sink in sinks for event, arrived in sink]
    result.update(
        events_per_stream=len(sinks[0]),
        identical_sequences=len(sequences) == 1,
        lag_p50=percentile(lags, 50),
        lag_p99=percentile(lags, 99),
        lag_max=max(lags),
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--streams", type=int, default=200)
    parser.add_argument("--instances", type=int, default=20)
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    args = parser.parse_args()
    env = {"EVENTS_MAX_STREAMS": str(max(args.streams, 200)), "HTTP_MAX_CONNECTIONS": "2000"}
    with service_on_simulator(args.database, 1.0, 0.01, **env) as service:
        pid = service_pid(service)
        result = asyncio.run(run(service.base_url, pid, args.streams, args.instances))
    print(f"database {args.database}, {args.streams} streams, {args.instances} instances")
    print(f"idle CPU, no stream:        {result['idle_cpu_no_stream'] * 100:.2f} % of a core")
    print(f"idle CPU, streams open:     {result['idle_cpu_with_streams'] * 100:.2f} % of a core")
    print(f"events per stream:          {result['events_per_stream']}")
    print(f"identical on every stream:  {result['identical_sequences']}")
    print(
        f"lag write -> stream:        p50 {fmt_ms(result['lag_p50'])}, "
        f"p99 {fmt_ms(result['lag_p99'])}, max {fmt_ms(result['lag_max'])}"
    )


if __name__ == "__main__":
    main()
