"""The line between an API process and the pipeline worker process that `serve` starts beside it.

`novita-manager serve` (role all) answers HTTP in one process and runs the pipelines, the status
sync and the scheduled tasks in a child process (cli/pipeline_worker.py), so that reads offered
faster than one core can serve cannot starve the lifecycles: the kernel gives each process its
share. The two talk over UNIX sockets in a private directory that the parent creates:

- `wake.sock` (datagram): an API process sends one byte when it stored new work, and the worker
  wakes its pipelines at once, so a create starts within milliseconds as it did in one process.
  A lost datagram costs at most the pipelines' idle poll (1 s); nothing depends on it.
- `worker.sock` (HTTP): the worker's /health and /metrics. The API's /metrics merges the
  worker's series into its own (`merge_exposition`), so one scrape still sees the whole service.

On PostgreSQL `serve` may run the background work in several child processes
(PIPELINE_PROCESSES): each then has its two sockets in a directory of its own, `child-<n>` in
the shared one, and the API side wakes every child and merges every child's series.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Callable
from pathlib import Path

import aiohttp
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from novita_manager.logging import get_logger

log = get_logger(__name__)
METRICS_TIMEOUT = 2.0  # seconds; a scrape without the worker's series beats a hanging one


CHILD_PREFIX = "child-"


def child_directories(directory: Path, count: int) -> list[Path]:
    """Where each of `count` child processes keeps its sockets (made here): `directory` itself
    for one child, `child-0`, `child-1`, ... in it for several."""
    if count == 1:
        return [directory]
    children = [directory / f"{CHILD_PREFIX}{index}" for index in range(count)]
    for child in children:
        child.mkdir(exist_ok=True)
    return children


class WorkerLink:
    """The socket paths of one `serve`, and the API side's use of them. `wake_path` and
    `http_path` are a child's own (in `directory`); the API side reaches every child in
    `directory` (see `child_directories`)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.wake_path = directory / "wake.sock"
        self.http_path = directory / "worker.sock"
        children = sorted(
            directory.glob(f"{CHILD_PREFIX}*"), key=lambda path: int(path.name.split("-")[-1])
        )
        self.children = children or [directory]
        self._wake_socket: socket.socket | None = None
        self._wake_due = False

    def wake(self) -> None:
        """Tell the worker that new work is stored (never blocks, never raises).

        Sent at the end of the loop's turn, once for all the wakes of that turn: the creates
        of one round of `services/create_writer.py` are answered together, and a datagram
        each was a sixth of the create handler's samples in a profile (and as many wake-ups of
        the worker)."""
        if self._wake_due:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop (a synchronous caller): send at once
            self._send_wake()
            return
        self._wake_due = True
        loop.call_soon(self._send_wake)

    def _send_wake(self) -> None:
        self._wake_due = False
        if self._wake_socket is None:
            self._wake_socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            self._wake_socket.setblocking(False)
        for child in self.children:
            with contextlib.suppress(OSError):  # worker not up yet, or its buffer is full
                self._wake_socket.sendto(b"w", str(child / "wake.sock"))

    async def metrics_text(self) -> str | None:
        """The workers' /metrics as one (`merge_exposition`), or None when none answers in
        time (a child that does not is left out)."""
        texts = await asyncio.gather(*(self._child_metrics(child) for child in self.children))
        answered = [text for text in texts if text is not None]
        if not answered:
            return None
        merged = answered[0]
        for text in answered[1:]:
            merged = merge_exposition(merged.encode(), text).decode()
        return merged

    async def _child_metrics(self, child: Path) -> str | None:
        connector = aiohttp.UnixConnector(path=str(child / "worker.sock"))
        timeout = aiohttp.ClientTimeout(total=METRICS_TIMEOUT)
        try:
            async with (
                aiohttp.ClientSession(connector=connector, timeout=timeout) as session,
                session.get("http://worker/metrics") as response,
            ):
                response.raise_for_status()
                return await response.text()
        except (aiohttp.ClientError, TimeoutError) as error:
            log.warning("worker_metrics_unavailable", error=type(error).__name__)
            return None

    def close(self) -> None:
        if self._wake_socket is not None:
            self._wake_socket.close()
            self._wake_socket = None


class WakeListener:
    """The worker side of `wake.sock`: calls `on_wake` once per burst of datagrams."""

    def __init__(self, path: Path, on_wake: Callable[[], None]) -> None:
        self.path = path
        self.on_wake = on_wake
        self._socket: socket.socket | None = None

    def start(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.setblocking(False)
        sock.bind(str(self.path))
        self._socket = sock
        asyncio.get_running_loop().add_reader(sock.fileno(), self._readable)

    def _readable(self) -> None:
        sock = self._socket
        if sock is None:
            return
        with contextlib.suppress(BlockingIOError, InterruptedError):
            while sock.recv(64):  # drain: one wake-up however many creates arrived
                pass
        self.on_wake()

    def close(self) -> None:
        sock, self._socket = self._socket, None
        if sock is None:
            return
        with contextlib.suppress(RuntimeError):  # the loop is already closed
            asyncio.get_running_loop().remove_reader(sock.fileno())
        sock.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


def merge_exposition(own: bytes, other: str) -> bytes:
    """Two processes' Prometheus text as one service: a series both have is summed (counters,
    histograms: each process counted its own events) or, for a gauge, the larger value is kept
    (stored-state gauges read the same rows in both; the circuit state's larger value is the
    worse one; an API-only gauge is 0 in the worker). Series only one has are kept as they are."""
    families: dict[str, Metric] = {}
    for family in text_string_to_metric_families(own.decode()):
        families[family.name] = family
    for family in text_string_to_metric_families(other):
        mine = families.get(family.name)
        if mine is None or mine.type != family.type:
            families.setdefault(family.name, family)
            continue
        combine = max if family.type == "gauge" else _add
        values: dict[tuple[str, tuple[tuple[str, str], ...]], Sample] = {
            _key(sample): sample for sample in mine.samples
        }
        for sample in family.samples:
            key = _key(sample)
            if key in values:
                found = values[key]
                values[key] = found._replace(value=combine(found.value, sample.value))
            else:
                values[key] = sample
        mine.samples = list(values.values())
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Fixed(list(families.values())))  # type: ignore[arg-type]
    return generate_latest(registry)


def _add(a: float, b: float) -> float:
    return a + b


def _key(sample: Sample) -> tuple[str, tuple[tuple[str, str], ...]]:
    return sample.name, tuple(sorted(sample.labels.items()))


class _Fixed:
    """A collector that yields families already built (the merge above)."""

    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> list[Metric]:
        return self.families
