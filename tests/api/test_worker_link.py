"""api/worker_link.py: the wake-up datagrams between `serve`'s two processes (over real UNIX
sockets) and the merge of their Prometheus series (pure)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from novita_manager.api.worker_link import WakeListener, WorkerLink, merge_exposition


async def test_a_wake_reaches_the_listener_once_per_burst(tmp_path: Path) -> None:
    link = WorkerLink(tmp_path)
    link.wake()  # nobody listens yet: dropped without an error
    woken = asyncio.Event()
    calls: list[int] = []

    def on_wake() -> None:
        calls.append(1)
        woken.set()

    listener = WakeListener(link.wake_path, on_wake)
    listener.start()
    try:
        for _ in range(5):
            link.wake()
        await asyncio.wait_for(woken.wait(), 5)
        await asyncio.sleep(0.05)
        assert 1 <= len(calls) <= 5  # drained: one wake-up per readable burst
        woken.clear()
        link.wake()
        await asyncio.wait_for(woken.wait(), 5)
    finally:
        listener.close()
        link.close()
    assert not link.wake_path.exists()


async def test_the_wakes_of_one_loop_turn_send_one_datagram(tmp_path: Path) -> None:
    link = WorkerLink(tmp_path)
    receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    receiver.bind(str(link.wake_path))
    receiver.setblocking(False)
    try:
        for _ in range(50):  # fifty creates answered in one turn
            link.wake()
        await asyncio.sleep(0)  # the end of the turn
        await asyncio.sleep(0.01)
        assert received(receiver) == 1
        link.wake()
        await asyncio.sleep(0.01)
        link.wake()
        await asyncio.sleep(0.01)
        assert received(receiver) == 2  # one per turn that woke
    finally:
        receiver.close()
        link.close()


def received(receiver: socket.socket) -> int:
    count = 0
    with contextlib.suppress(BlockingIOError):
        while receiver.recv(16):
            count += 1
    return count


def registry_text(
    requests: float, sheds: float, in_flight: float, state: float, latencies: list[float]
) -> bytes:
    registry = CollectorRegistry()
    counter = Counter("nm_requests", "Requests.", ["route"], registry=registry)
    counter.labels("/a").inc(requests)
    if sheds:
        Counter("nm_shed", "Shed.", registry=registry).inc(sheds)
    Gauge("nm_in_flight", "In flight.", registry=registry).set(in_flight)
    Gauge("nm_circuit", "Circuit.", registry=registry).set(state)
    histogram = Histogram("nm_latency", "Latency.", buckets=(0.1, 1.0), registry=registry)
    for value in latencies:
        histogram.observe(value)
    return generate_latest(registry)


def samples(text: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text.decode())
        for sample in family.samples
        if not sample.name.endswith("_created")
    }


def test_merge_sums_counters_and_histograms_and_keeps_the_larger_gauge() -> None:
    api = registry_text(requests=3, sheds=7, in_flight=4, state=0, latencies=[0.05])
    worker = registry_text(requests=2, sheds=0, in_flight=0, state=2, latencies=[0.5, 2.0])
    merged = samples(merge_exposition(api, worker.decode()))
    assert merged[("nm_requests_total", (("route", "/a"),))] == 5
    assert merged[("nm_shed_total", ())] == 7  # only the API process has it
    assert merged[("nm_in_flight", ())] == 4  # an API gauge, 0 in the worker
    assert merged[("nm_circuit", ())] == 2  # the worse circuit state
    assert merged[("nm_latency_count", ())] == 3
    assert merged[("nm_latency_sum", ())] == 2.55
    assert merged[("nm_latency_bucket", (("le", "0.1"),))] == 1
    assert merged[("nm_latency_bucket", (("le", "1.0"),))] == 2
    assert merged[("nm_latency_bucket", (("le", "+Inf"),))] == 3


def test_merge_keeps_series_only_one_process_has() -> None:
    api = registry_text(requests=1, sheds=0, in_flight=1, state=0, latencies=[])
    registry = CollectorRegistry()
    Counter("nm_rows", "Rows.", ["pipeline"], registry=registry).labels("provisioning").inc(9)
    merged = samples(merge_exposition(api, generate_latest(registry).decode()))
    assert merged[("nm_rows_total", (("pipeline", "provisioning"),))] == 9
    assert merged[("nm_requests_total", (("route", "/a"),))] == 1
    assert samples(merge_exposition(api, "")) == samples(api)
