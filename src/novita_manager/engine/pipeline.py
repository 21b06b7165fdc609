"""A generic pipeline: fetcher, N workers and a heartbeater advancing the due rows of one table.

A row is due when `next_attempt_at <= now` and it has no live lease (`lock_expires_at` NULL or
past). The fetcher claims due rows in one short transaction: `FOR UPDATE SKIP LOCKED` on PostgreSQL,
so replicas never claim the same row; a process-local lock on SQLite, which serves one process. A
claim writes a fresh `lock_token` and `lock_expires_at` (one UPDATE ... RETURNING, engine/claim.py),
then commits; the rows go to the workers through a queue, and the fetcher never claims more than the
free workers can take, so no lease ages in a queue. Workers call `handler(lease, row)` outside any
transaction; the handler writes its result with `leases.write_with_lease` (normally with
release=True). Afterwards the pipeline clears a lease the handler left (skipped when the handler's
release committed), or, when the handler raised, records the failure (`retry.retry_values`) under
the lease. While due rows keep coming (the last claim was full) the fetcher waits for half a batch
of free workers before it claims again: fewer, larger claim transactions. The heartbeater extends
the leases in work every lease_seconds/3. A process that dies simply stops heartbeating: its leases
expire and any replica claims the rows again, so every handler step must be safe to repeat.

A handler must move the row on: set `next_attempt_at` to a later time, or NULL when it needs no more
work; a row left due is claimed again at once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, Generic, TypeVar, cast

from sqlalchemy import ColumnElement, and_, bindparam, func, or_, select, update

from novita_manager.engine.claim import claim_parameters, claim_statement, in_claim_order
from novita_manager.engine.leases import (
    Lease,
    LeasedModel,
    LeaseLost,
    release_committed,
    write_with_lease,
)
from novita_manager.engine.retry import retry_values
from novita_manager.logging import bound_context, get_logger
from novita_manager.metrics import Metrics
from novita_manager.store.db import Database
from novita_manager.store.types import utcnow

RowT = TypeVar("RowT")
Handler = Callable[[Lease, RowT], Awaitable[None]]
HEARTBEAT_CHUNK = 200
log = get_logger(__name__)


class Pipeline(Generic[RowT]):
    """Advances due rows of `model` with `handler`; see the module docstring for the protocol."""

    def __init__(
        self,
        *,
        name: str,
        db: Database,
        model: type[RowT],
        handler: Handler[RowT],
        due_filter: ColumnElement[bool] | None = None,
        first: ColumnElement[bool] | None = None,
        workers: int = 8,
        batch_size: int | None = None,
        lease_seconds: float = 30.0,
        idle_min: float = 0.05,
        idle_max: float = 1.0,
        owner: str | None = None,
        metrics: Metrics | None = None,
        retry_base: float = 1.0,
        retry_cap: float = 300.0,
        claim_lag: float = 0.0,
        claim_gate: Callable[[], bool] | None = None,
    ) -> None:
        """`claim_lag`: claim only rows due for at least that many seconds (a spare process's
        pipeline takes the backlog that the others leave, not the rows they take at once);
        `claim_gate`: claim only while it says yes (a spare process: a core is idle)."""
        if workers < 1 or lease_seconds <= 0 or not 0 < idle_min <= idle_max:
            raise ValueError("need workers >= 1, lease_seconds > 0 and 0 < idle_min <= idle_max")
        self.name = name
        self.db = db
        self.model = model
        self.handler = handler
        self.due_filter = due_filter
        self.workers = workers
        self.batch_size = min(batch_size or workers, workers)
        self.lease_seconds = lease_seconds
        self.idle_min = idle_min
        self.idle_max = idle_max
        self.owner = owner or db.owner
        self.metrics = metrics
        self.retry_base = retry_base
        self.retry_cap = retry_cap
        self.claim_lag = timedelta(seconds=claim_lag)
        self.claim_gate = claim_gate
        self._table = cast(type[LeasedModel], model)
        self._claim_lock = f"claim:{getattr(model, '__tablename__', name)}"
        # Due rows in the order they became due; `first`: the rows that jump that queue.
        self._first = first
        self._claim_update = claim_statement(
            model, self._due(bindparam("now")), first, owner=self.owner, dialect=db.dialect
        )
        self._queue: asyncio.Queue[tuple[Lease, RowT]] = asyncio.Queue(maxsize=workers)
        self._held: dict[str, Lease] = {}  # claimed and not finished: queued or in a handler
        # The last claim was full, so more rows are likely due (the fetcher then claims larger
        # batches; the status sync waits for it, StatusSync._defer).
        self.backlogged = False
        self.last_claimed: list[RowT] = []  # the rows of the last claim (what the backlog is)
        self._wake = asyncio.Event()
        self._slot_freed = asyncio.Event()
        self._stopping = False
        self._fetcher: asyncio.Task[None] | None = None
        self._helpers: list[asyncio.Task[None]] = []

    @property
    def in_work(self) -> int:
        return len(self._held)  # claimed and not finished: queued or in a handler

    # Control -------------------------------------------------------------------------------

    def hint(self) -> None:
        """New work may be due: wake the fetcher now instead of after its idle backoff."""
        self._wake.set()

    async def start(self) -> None:
        if self._fetcher is not None:
            return
        self._stopping = False
        self._helpers = [
            asyncio.create_task(self._work_loop(), name=f"{self.name}-worker-{i}")
            for i in range(self.workers)
        ]
        self._helpers.append(asyncio.create_task(self._heartbeat_loop(), name=f"{self.name}-hb"))
        self._fetcher = asyncio.create_task(self._fetch_loop(), name=f"{self.name}-fetcher")
        log.info("pipeline_started", pipeline=self.name, workers=self.workers, owner=self.owner)

    async def stop(self, drain_timeout: float = 10) -> None:
        """Stop claiming; let claimed rows finish for up to `drain_timeout` seconds, then cancel.

        Rows still in work when the time is up keep their leases, which expire so that another
        process (or this one after a restart) takes them up again.
        """
        if self._fetcher is None:
            return
        self._stopping = True
        self._wake.set()
        self._slot_freed.set()
        with contextlib.suppress(Exception):
            await self._fetcher  # exits at its next check; a claim in progress completes
        try:
            await asyncio.wait_for(self._queue.join(), drain_timeout)
        except TimeoutError:
            log.warning("pipeline_drain_timeout", pipeline=self.name, in_work=len(self._held))
        for task in self._helpers:
            task.cancel()
        await asyncio.gather(*self._helpers, return_exceptions=True)
        self._fetcher, self._helpers = None, []
        log.info("pipeline_stopped", pipeline=self.name)

    async def run_once(self) -> int:
        """Claim one batch and process it to the end; returns the number of rows processed."""
        claimed = await self._claim(self.batch_size)
        if not claimed:
            return 0
        heartbeat = None if self._fetcher else asyncio.create_task(self._heartbeat_loop())
        try:
            await asyncio.gather(*(self._process(lease, row) for lease, row in claimed))
        finally:
            if heartbeat is not None:
                heartbeat.cancel()
                await asyncio.gather(heartbeat, return_exceptions=True)
        return len(claimed)

    # Fetcher -------------------------------------------------------------------------------

    async def _fetch_loop(self) -> None:
        delay = self.idle_min
        while not self._stopping:
            free = self.workers - len(self._held)
            # With a backlog, wait until half a batch of workers is free: fewer, larger claims.
            if free < ((self.batch_size + 1) // 2 if self.backlogged else 1):
                self._slot_freed.clear()
                await self._slot_freed.wait()
                continue
            self._wake.clear()  # before claiming, so a hint during the claim is not lost
            limit = min(free, self.batch_size)
            try:
                gate_open = self.claim_gate is None or self.claim_gate()
                claimed = await self._claim(limit) if gate_open else []
            except Exception:
                log.exception("pipeline_claim_failed", pipeline=self.name)
                claimed = []
            for item in claimed:
                self._queue.put_nowait(item)  # never full: claims are bounded by free workers
            self.backlogged = len(claimed) == limit
            if claimed:
                delay = self.idle_min
                if self.backlogged:
                    continue
            # Fewer rows than it could take: it took every due row, so the next claim waits for
            # a hint or the idle poll. Claiming again at once found nothing: half the delivery
            # pipeline's claims in a burst of 1,000 webhooks were empty (`bench.burst`).
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)
            delay = self.idle_min if self._wake.is_set() else min(delay * 2, self.idle_max)

    def _due(self, now: Any = None) -> ColumnElement[bool]:
        """Rows due at `now` (a time, or a bound parameter; default: the time now)."""
        table = self._table
        if now is None:
            now = utcnow()
        due = and_(
            table.next_attempt_at <= now,
            or_(table.lock_expires_at.is_(None), table.lock_expires_at <= now),
        )
        return due if self.due_filter is None else and_(due, self.due_filter)

    async def _claim(self, limit: int) -> list[tuple[Lease, RowT]]:
        if limit <= 0:
            return []
        if self.db.dialect == "sqlite":
            async with self.db.local_lock(self._claim_lock):
                return await self._claim_rows(limit)
        return await self._claim_rows(limit)

    async def _claim_rows(self, limit: int) -> list[tuple[Lease, RowT]]:
        now = utcnow()
        parameters = claim_parameters(now, limit, self.lease_seconds)
        parameters["now"] = now - self.claim_lag  # the rows due by then
        async with self.db.statement_session() as session, session.begin():
            result = await session.execute(self._claim_update, parameters)
            rows = in_claim_order(result, ranked=self._first is not None)
        # Committed; expire_on_commit=False leaves each row a detached snapshot for its handler
        # (RETURNING loaded it with its lease columns).
        claimed: list[tuple[Lease, RowT]] = []
        for row in rows:
            lease = Lease(str(row.id), str(row.lock_token), self.owner)
            claimed.append((lease, row))
            self._held[lease.row_id] = lease
            if self.metrics is not None:
                lag = (now - row.next_attempt_at).total_seconds()
                self.metrics.pipeline_lag.labels(self.name).observe(max(lag, 0.0))
        self.last_claimed = [row for _, row in claimed]
        return claimed

    # Workers -------------------------------------------------------------------------------

    async def _work_loop(self) -> None:
        while True:
            lease, row = await self._queue.get()
            try:
                await self._process(lease, row)
            finally:
                self._queue.task_done()

    async def _process(self, lease: Lease, row: RowT) -> None:
        outcome = "cancelled"
        try:
            with bound_context(pipeline=self.name, row_id=lease.row_id):
                try:
                    await self.handler(lease, row)
                except LeaseLost:
                    outcome = "lease_lost"  # another worker owns the row now: nothing to write
                    log.warning("pipeline_lease_lost")
                except Exception as error:
                    outcome = "error"
                    log.exception("pipeline_step_failed", error=str(error)[:500])
                    attempts = int(getattr(row, "attempts", 0) or 0)
                    message = f"{type(error).__name__}: {error}"
                    values = retry_values(
                        attempts, message, base=self.retry_base, cap=self.retry_cap, now=utcnow()
                    )
                    if not release_committed(lease):  # else its result committed
                        await self._finish(lease, values)
                else:
                    outcome = "ok"
                    if not release_committed(lease):  # the handler usually released it
                        await self._finish(lease, {})
        finally:
            # Forget the lease only if it is still this claim's (a re-claim may have replaced it).
            if self._held.get(lease.row_id) == lease:
                del self._held[lease.row_id]
            self._slot_freed.set()
            if self.metrics is not None:
                self.metrics.pipeline_processed.labels(self.name, outcome).inc()

    async def _finish(self, lease: Lease, values: dict[str, Any]) -> None:
        """Write `values` and release the lease, if still held (a no-op after handler release)."""
        try:
            async with self.db.session() as session, session.begin():
                await write_with_lease(session, self.model, lease, values, release=True)
        except Exception:
            log.exception("pipeline_release_failed")  # the lease expires on its own

    # Heartbeater ---------------------------------------------------------------------------

    async def _heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(self.lease_seconds / 3)
            try:
                await self._heartbeat()
                if self.metrics is not None:
                    await self._sample_backlog()
            except Exception:
                log.exception("pipeline_heartbeat_failed", pipeline=self.name)

    async def _heartbeat(self) -> None:
        held = list(self._held.values())
        table = self._table
        for start in range(0, len(held), HEARTBEAT_CHUNK):
            chunk = held[start : start + HEARTBEAT_CHUNK]
            mine = or_(*(and_(table.id == h.row_id, table.lock_token == h.token) for h in chunk))
            if self.db.dialect == "postgresql":
                # Skip rows another transaction is writing (a step's result in a group commit):
                # waiting for them, in another order than theirs, deadlocked (measured on the
                # lifecycle bench); such a row is locked for milliseconds and extended at the
                # next round, two rounds before its lease would expire.
                mine = table.id.in_(select(table.id).where(mine).with_for_update(skip_locked=True))
            expires = utcnow() + timedelta(seconds=self.lease_seconds)
            async with self.db.statement_session() as session, session.begin():
                await session.execute(
                    update(self.model)
                    .where(mine)
                    .values(lock_expires_at=expires)
                    .execution_options(synchronize_session=False)
                )

    async def _sample_backlog(self) -> None:
        assert self.metrics is not None
        async with self.db.read_session() as session:
            count = await session.scalar(
                select(func.count()).select_from(self.model).where(self._due())
            )
        self.metrics.pipeline_backlog.labels(self.name).set(count or 0)
