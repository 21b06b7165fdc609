"""The runner of scheduled tasks (see the package docstring)."""

from __future__ import annotations

import asyncio
import contextlib
import time
import weakref
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from prometheus_client import Counter

from novita_manager.engine.service_lease import HeldServiceLease
from novita_manager.logging import get_logger
from novita_manager.metrics import Metrics
from novita_manager.store.db import Database

log = get_logger(__name__)

# A task's loop comes round at least this often (to renew its lease, or to see a request).
MAX_TICK = 30.0


@dataclass(frozen=True)
class ScheduledTask:
    """`run` does the work once and returns how much it did (logged when more than 0).

    Without `follows` the task takes its own service lease; with it, the task runs only while
    `follows()` is True (in the process that holds some other lease) and takes none.
    """

    name: str
    interval: float
    run: Callable[[], Awaitable[int]]
    follows: Callable[[], bool] | None = None

    @property
    def lease_name(self) -> str:
        return f"scheduled:{self.name}"


@dataclass
class TaskHealth:
    runs: int = 0
    failures: int = 0
    last_error: str | None = None


_RUNS: weakref.WeakKeyDictionary[Metrics, Counter] = weakref.WeakKeyDictionary()


def _runs_counter(metrics: Metrics) -> Counter:
    """The runs counter in `metrics`' registry (one per registry, however many runners)."""
    counter = _RUNS.get(metrics)
    if counter is None:
        counter = _RUNS[metrics] = Counter(
            "novita_manager_scheduled_task_runs_total",
            "Runs of scheduled tasks (idempotency purge, stray deletion, limits) by task and "
            "outcome (ok, failed).",
            ["task", "outcome"],
            registry=metrics.registry,
        )
    return counter


class ScheduledRunner:
    def __init__(
        self,
        *,
        db: Database,
        owner: str,
        tasks: Sequence[ScheduledTask],
        metrics: Metrics | None = None,
    ) -> None:
        if len({task.name for task in tasks}) != len(tasks):
            raise ValueError("scheduled task names must be unique")
        self.db = db
        self.owner = owner
        self.tasks = {task.name: task for task in tasks}
        self.runs = None if metrics is None else _runs_counter(metrics)
        self.health = {task.name: TaskHealth() for task in tasks}
        self._wake = {task.name: asyncio.Event() for task in tasks}
        self._loops: list[asyncio.Task[None]] = []

    def request(self, name: str) -> None:
        """Run the task `name` soon (where it may run), without waiting for its interval."""
        self._wake[name].set()

    async def start(self) -> None:
        if self._loops:
            return
        self._loops = [
            asyncio.create_task(self._loop(task), name=f"scheduled-{task.name}")
            for task in self.tasks.values()
        ]

    async def stop(self) -> None:
        for loop in self._loops:
            loop.cancel()
        await asyncio.gather(*self._loops, return_exceptions=True)
        self._loops = []

    async def run_task(self, name: str) -> int:
        """Run the task once now, here, whoever holds its lease; returns how much it did."""
        task = self.tasks[name]
        health = self.health[name]
        started = time.monotonic()
        try:
            done = await task.run()
        except Exception as error:
            health.failures += 1
            health.last_error = f"{type(error).__name__}: {error}"
            if self.runs is not None:
                self.runs.labels(name, "failed").inc()
            log.exception("scheduled_task_failed", task=name, error=str(error)[:500])
            return 0
        health.runs += 1
        health.last_error = None
        if self.runs is not None:
            self.runs.labels(name, "ok").inc()
        if done:
            elapsed = round(time.monotonic() - started, 3)
            log.info("scheduled_task_done", task=name, count=done, seconds=elapsed)
        return done

    async def _loop(self, task: ScheduledTask) -> None:
        tick = min(task.interval, MAX_TICK)
        lease = (
            None
            if task.follows is not None
            else HeldServiceLease(self.db, task.lease_name, self.owner, max(tick * 3, 5.0))
        )
        wake = self._wake[task.name]
        last_run: float | None = None
        try:
            while True:
                requested = wake.is_set()
                wake.clear()
                try:
                    if lease is None:
                        assert task.follows is not None
                        mine = task.follows()
                    else:
                        mine = await lease.hold()
                    due = (
                        requested
                        or last_run is None
                        or time.monotonic() - last_run >= task.interval
                    )
                    if mine and due:
                        last_run = time.monotonic()
                        await self.run_task(task.name)
                except Exception:
                    log.exception("scheduled_task_loop_failed", task=task.name)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), timeout=tick)
        finally:
            if lease is not None:
                with contextlib.suppress(Exception):
                    await lease.release()
