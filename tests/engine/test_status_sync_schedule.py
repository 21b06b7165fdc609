"""When the status sync runs: runs begin one poll interval apart, counted from each start, and
never closer than the coalescing gap to the last one's end; a request brings the next run
forward to the gap after it."""

from __future__ import annotations

import asyncio
import itertools
import time

from novita_manager.engine.status_sync import StatusSync
from novita_manager.engine.status_sync.sync import SyncReport
from tests.engine.steps import Steps


def _timed(sync: StatusSync, run_seconds: float) -> list[tuple[float, float]]:
    """Make each run take `run_seconds`; returns the (start, end) of the runs as they happen."""
    runs: list[tuple[float, float]] = []

    async def run_once() -> SyncReport:
        began = time.monotonic()
        await asyncio.sleep(run_seconds)
        runs.append((began, time.monotonic()))
        return SyncReport()

    sync.run_once = run_once  # type: ignore[method-assign]
    return runs


async def _until(runs: list[tuple[float, float]], count: int, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while len(runs) < count and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    assert len(runs) >= count


async def _first_runs(
    steps: Steps, *, interval: float, run_seconds: float, count: int
) -> list[tuple[float, float]]:
    """The first `count` runs of a sync left alone, whose runs each take `run_seconds`."""
    sync = StatusSync(db=steps.db, client=steps.ctx.client, interval=interval, owner="test")
    runs = _timed(sync, run_seconds)
    await sync.start()
    try:
        await _until(runs, count)
    finally:
        await sync.stop()
    return runs


async def test_runs_begin_one_interval_apart(steps: Steps) -> None:
    """A run of 0.3 s with a 0.6 s interval: the next begins 0.6 s after the last began (it
    began 0.6 + 0.3 + the gap after it when counted from the end: a 1 s poll every 1.4 s)."""
    runs = await _first_runs(steps, interval=0.6, run_seconds=0.3, count=4)
    gaps = [later[0] - earlier[0] for earlier, later in itertools.pairwise(runs)]
    assert all(0.55 <= gap < 0.95 for gap in gaps), gaps  # counted from the end: 1.05


async def test_a_request_brings_the_next_run_forward_after_the_gap(steps: Steps) -> None:
    """Requests during a run make one more run, the coalescing gap (a quarter of the interval,
    at most 0.25 s) after its end, long before the interval is up."""
    sync = StatusSync(db=steps.db, client=steps.ctx.client, interval=30.0, owner="test")
    runs = _timed(sync, 0.2)
    await sync.start()
    try:
        await asyncio.sleep(0.1)  # the first run is under way
        for _ in range(5):
            sync.request()
        await _until(runs, 2)
        await asyncio.sleep(0.6)
    finally:
        await sync.stop()
    assert len(runs) == 2  # five requests, one more run
    gap = runs[1][0] - runs[0][1]
    assert 0.24 <= gap < 1.0, gap  # the interval is 30 s


async def test_a_request_while_idle_runs_the_gap_after_it(steps: Steps) -> None:
    """A request long after the last run: the next begins the gap after the request (what
    asked, a call just made, has a moment to show upstream), not at once and not at the
    interval. The spot recovery e2e tests saw the difference: run at once, the sync came a
    moment before a migrated instance ran, and the row waited a whole interval."""
    sync = StatusSync(db=steps.db, client=steps.ctx.client, interval=30.0, owner="test")
    runs = _timed(sync, 0.05)
    await sync.start()
    try:
        await _until(runs, 1)
        await asyncio.sleep(0.5)
        asked = time.monotonic()
        sync.request()
        await _until(runs, 2)
    finally:
        await sync.stop()
    assert 0.24 <= runs[1][0] - asked < 1.0, runs[1][0] - asked  # the interval is 30 s


async def test_a_run_longer_than_the_interval_still_leaves_the_gap(steps: Steps) -> None:
    """A run longer than the interval is followed by the next after the gap, not at once."""
    runs = await _first_runs(steps, interval=0.2, run_seconds=0.3, count=3)
    gaps = [later[0] - earlier[1] for earlier, later in itertools.pairwise(runs)]
    assert all(0.045 <= gap < 0.5 for gap in gaps), gaps  # min(0.2, 1) / 4 = 0.05
