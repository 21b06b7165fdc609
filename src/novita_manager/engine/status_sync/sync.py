"""`StatusSync`: the loop under the service lease, and one run of the sync."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from novita_manager.domain import observations
from novita_manager.domain.statuses import NOVITA_REMOVING
from novita_manager.engine.service_lease import HeldServiceLease
from novita_manager.engine.status_sync.listing import (
    PAGE_SIZE,
    creates_in_doubt,
    fallback_ids,
    fetch_missing,
)
from novita_manager.engine.status_sync.record import record
from novita_manager.engine.status_sync.settled import (
    MANAGED,
    RAW_SYNC_COLUMNS,
    SettledRows,
    observations_of,
    parsed,
    settle_key,
)
from novita_manager.engine.status_sync.strays import StraySightings, settle_strays
from novita_manager.gc_tuning import release_free_memory
from novita_manager.logging import get_logger
from novita_manager.metrics import Metrics
from novita_manager.novita.client import ListingProgress, NovitaClient
from novita_manager.novita.errors import NovitaError
from novita_manager.novita.listed import ListedInstance
from novita_manager.store.db import Database
from novita_manager.store.types import utcnow

log = get_logger(__name__)

LEASE_NAME = "status-sync"
EVALUATE_PART = 500  # rows evaluated and written together (see `run_once`)
PART_MAX_WAIT = 0.1  # seconds a listed change waits at most for its part (see `run_once`)
MAX_DEFERRAL = 3.0  # seconds a run waits at most for the provisioning backlog (`_defer`)
DEFER_STEP = 0.1  # seconds between two looks at the backlog while deferring


@dataclass
class SyncReport:
    pages: int = 0
    fallback_gets: int = 0
    rows: int = 0
    changed: int = 0
    strays: int = 0  # instances carrying our marker that no row owned (adopted or sighted)
    complete: bool = True  # whether the listing proved it saw every instance
    skipped: int = 0  # rows seen exactly as at the last run, not evaluated again


@dataclass
class SyncHealth:
    last_success_at: datetime | None = None
    last_error: str | None = None
    consecutive_failures: int = 0
    runs: int = 0


class StatusSync:
    def __init__(
        self,
        *,
        db: Database,
        client: NovitaClient,
        interval: float,
        owner: str,
        startup_timeout: float = 600.0,
        metrics: Metrics | None = None,
        on_changes: Callable[[], None] = lambda: None,
        on_strays: Callable[[], None] = lambda: None,
    ) -> None:
        self.db = db
        self.client = client
        self.interval = interval
        self.startup_timeout = startup_timeout
        # An unchanged row at rest gets its `last_synced_at` rewritten at most this often.
        self.resync_write_interval = max(interval * 10, 60.0)
        self.owner = owner
        self.metrics = metrics
        self.on_changes = on_changes  # wakes the provisioning pipeline
        self.on_strays = on_strays  # asks for the stray deletion task (scheduled/strays.py)
        # Whether the provisioning pipeline has a backlog (its last claim was full): see `_defer`.
        self.busy: Callable[[], bool] = lambda: False
        # Whether it has nothing in work: a part is then written early (`run_once`).
        self.idle: Callable[[], bool] = lambda: True
        self.max_deferral = MAX_DEFERRAL
        # What the last listing showed of strays, for the stray deletion task.
        self.sightings = StraySightings()
        self.health = SyncHealth()
        self._lease = HeldServiceLease(db, LEASE_NAME, owner, max(interval * 3, 5.0))
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        # The `settle_key` of each row seen unchanged without a reaction at the last run.
        self._settled = SettledRows()
        # The `observed_at` values recent runs wrote (their starts), within twice the longest a
        # row keeps one (`resync_write_interval`): a row showing one was written by the sync.
        self._own_writes: dict[datetime, None] = {}

    @property
    def holds_lease(self) -> bool:
        """Whether this process runs the sync now (tasks that follow the sync check it)."""
        return self._lease.held

    def _calm(self, row: Any, started: datetime) -> bool:
        """Whether only news (not time) can make this row need a reaction: no deadline of an
        operation under way has passed (the provisioning step waits for its own deadline
        too, but the sync's fresh `observed_at` is what proves a timeout)."""
        if row.operation is None:
            return True
        begun = row.operation_started_at or started
        return (started - begun).total_seconds() < self.startup_timeout

    def _settle(
        self,
        row: Any,
        item: ListedInstance,
        settled: SettledRows,
        keys: dict[str, int],
        started: datetime,
    ) -> dict[str, Any] | int:
        """The row's settle key when the row is seen exactly as at the last run (it is not
        evaluated again), else the listed instance's summary (its key, if any, goes in
        `keys`)."""
        key = settle_key(row, item, self._own_writes)
        if key is not None and key in settled and self._calm(row, started):
            keys.pop(row.id, None)
            return key
        if key is not None:
            keys[row.id] = key
        return observations.summarize(item)

    def request(self) -> None:
        """Ask for an early sync (after a create or an operation); coalesced with others."""
        self._wake.set()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="status-sync")

    async def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _loop(self) -> None:
        min_gap = min(self.interval, 1.0) / 4
        while not self._stopping:
            # Cleared before the run, not after: a request made while a sync runs (or during
            # the coalescing gap) asks for one more, e.g. a create right after a delete.
            self._wake.clear()
            began = time.monotonic()
            try:
                await self._defer()
                began = time.monotonic()
                if await self._lease.hold():
                    await self.run_once()
                    release_free_memory()  # the C heap's free pages after the run (1-4 ms)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("status_sync_crashed")
            # Runs begin an interval apart (counted from the last one's start: counted from its
            # end, plus the gap, a 1 s poll ran every 1.4 s on the burst bench), `min_gap` after
            # the last one's end at the earliest (a run longer than the interval breathes). A
            # request brings the next forward to `min_gap` after it: what asked for it (a call
            # just made) has a moment to show, and a burst of requests makes one run.
            ended = time.monotonic()
            try:
                await asyncio.wait_for(self._wake.wait(), max(began + self.interval - ended, 0))
            except TimeoutError:
                await asyncio.sleep(max(ended + min_gap - time.monotonic(), 0))
            else:
                await asyncio.sleep(min_gap)
        with contextlib.suppress(Exception):
            await self._lease.release()

    async def _defer(self) -> None:
        """Wait while the provisioning pipeline has a backlog, `max_deferral` seconds at most.

        Its due rows are being worked on already, and each of their steps reads the instance
        itself; a run meanwhile would list every page and evaluate every row that needs a
        reaction again for news it mostly has. When 1,000 instances reach running together,
        each run during their steps cost about a quarter of a second of the one core they
        share (py-spy: the sync was a sixth of the pipeline process's samples)."""
        deadline = time.monotonic() + self.max_deferral
        while self.busy() and not self._stopping and time.monotonic() < deadline:
            await asyncio.sleep(DEFER_STEP)

    async def _record_part(
        self,
        part: list[tuple[Any, dict[str, Any]]],
        started: datetime,
        quiet: set[str],
        unchanged: Any = (),
    ) -> int:
        """Evaluate and write one part of rows with what was listed of them (summaries), in
        one transaction (`record`); wake the pipeline if a row needs it, so it starts on this
        part while the next is listed or evaluated. Returns how many observations changed."""
        rows = [row for row, _ in part]
        texts = await observations_of(self.db, [row.id for row in rows]) if rows else {}
        changed, woke = await record(
            self.db,
            [parsed(row, texts.get(row.id)) for row in rows],
            {row.novita_instance_id: summary for row, summary in part},
            started,
            startup_timeout=self.startup_timeout,
            resync_write_interval=self.resync_write_interval,
            unchanged=unchanged,
            quiet=quiet,
        )
        if woke:
            self.on_changes()
        return changed

    async def run_once(self) -> SyncReport:
        """List the account once and record what it says about every managed instance."""
        report = SyncReport()
        async with self.db.read_session() as session:
            rows = (await session.execute(select(*RAW_SYNC_COLUMNS).where(MANAGED))).all()
        report.rows = len(rows)
        if not rows and not await creates_in_doubt(self.db):
            self._settled = SettledRows()
            return report  # nothing to watch: no upstream call at all
        started = utcnow()
        clock = time.perf_counter()
        managed = {row.novita_instance_id: row for row in rows}
        # A listed instance whose row is settled (below) is kept as its settle key only; the
        # others are evaluated and written in parts of EVALUATE_PART while the listing goes on
        # (`_record_part`). Holding every listed instance to the listing's end cost about 1 KiB
        # per managed instance at the run's peak (10,000 when every row changed), which the
        # process kept as its size (docs/design.md "Memory"). A part written before a listing
        # fails stays written: what it recorded was listed.
        seen: dict[str, int | None] = {}
        keys: dict[str, int] = {}
        settled = self._settled
        strays: dict[str, tuple[str, ListedInstance]] = {}
        part: list[tuple[Any, dict[str, Any]]] = []
        part_began = 0.0  # when its first row was listed
        quiet: set[str] = set()
        progress = ListingProgress()
        try:
            async for page in self.client.list_listed_pages(page_size=PAGE_SIZE, progress=progress):
                report.pages += 1
                if self.metrics is not None:
                    self.metrics.status_sync_pages.inc()
                for item in page.instances:
                    row = managed.get(item.id)
                    if row is not None:
                        if item.id in seen:
                            continue  # listed twice (the listing shifted): evaluated once
                        listed = self._settle(row, item, settled, keys, started)
                        if isinstance(listed, int):
                            seen[item.id] = listed
                        else:
                            seen[item.id] = None
                            if not part:
                                part_began = time.monotonic()
                            part.append((row, listed))
                    elif item.marker and item.status not in NOVITA_REMOVING:
                        strays[item.id] = (item.marker, item)
                # A part is written when full, or, while the provisioning pipeline has nothing
                # to do, once its first row has waited PART_MAX_WAIT: the rows' steps start
                # while the listing goes on. When 1,000 instances reached running at once, the
                # first part filled after 25 pages of 20 (about 0.3 s), the pipelines idle
                # until then (`bench.burst`). Not while they work: such parts gained nothing
                # and cost 2-3 MiB of the memory benchmark's peak (more, smaller parts).
                if len(part) >= EVALUATE_PART or (
                    part and time.monotonic() - part_began >= PART_MAX_WAIT and self.idle()
                ):
                    report.changed += await self._record_part(part, started, quiet)
                    part = []
            missing = fallback_ids(rows, seen, complete=progress.complete)
            report.complete = progress.complete
            report.fallback_gets = len(missing)
            fetched = await fetch_missing(self.client, missing)
        except NovitaError as error:
            self.health.consecutive_failures += 1
            self.health.last_error = str(error)
            log.warning("status_sync_failed", error=str(error))
            return report
        listed_at = time.perf_counter()
        # Rows seen exactly as at the last run (same listing fingerprint, same row) are not
        # evaluated again: their observation and decision are those of the last run.
        settled_now: list[int] = []
        unchanged: list[Any] = []
        for row in rows:
            key = seen.get(row.novita_instance_id)
            if key is not None:
                unchanged.append(row)
                settled_now.append(key)
            elif row.novita_instance_id in fetched:
                part.append((row, fetched[row.novita_instance_id]))
        self._settled = SettledRows(settled_now)  # what holds should the evaluation below fail
        adopted, sighted = await settle_strays(self.db, strays, started) if strays else (0, [])
        report.strays = adopted + len(sighted)
        self.sightings.record(sighted)
        if sighted:
            self.on_strays()
        for start in range(0, max(len(part), 1), EVALUATE_PART):
            report.changed += await self._record_part(
                part[start : start + EVALUATE_PART],
                started,
                quiet,
                unchanged=unchanged if start == 0 else (),
            )
        report.skipped = len(unchanged)
        if self.metrics is not None:
            self.metrics.status_sync_duration.labels("listing").observe(listed_at - clock)
            self.metrics.status_sync_duration.labels("record").observe(
                time.perf_counter() - listed_at
            )
        settled_now += (keys[row_id] for row_id in quiet & keys.keys())
        self._settled = SettledRows(settled_now)
        self._own_writes[started] = None
        oldest = started - timedelta(seconds=2 * self.resync_write_interval)
        while next(iter(self._own_writes)) < oldest:  # oldest first: insertion order
            del self._own_writes[next(iter(self._own_writes))]
        self.health.consecutive_failures = 0
        self.health.last_error = None
        self.health.last_success_at = started
        self.health.runs += 1
        log.debug(
            "status_sync",
            pages=report.pages,
            rows=report.rows,
            changed=report.changed,
            fallback_gets=report.fallback_gets,
        )
        return report
