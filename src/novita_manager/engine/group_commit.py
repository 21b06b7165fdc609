"""Group commit: the writes of many workers in shared transactions.

When a burst of rows is due (a thousand instances reaching `running` within a second, their
webhooks), every worker used to open a transaction of its own. On SQLite there is one writing
connection and each statement is a hop to its thread and back, so the writes queued behind each
other one commit at a time; on PostgreSQL each commit is a round trip and a WAL flush. Here a
worker hands its unit of work (a function of the session) to `GroupCommit.run`; while one
transaction is being written, the units that arrive queue, and the next transaction runs them
all, in arrival order, then commits once. Under no load a unit runs alone at once, as before.

A unit must leave nothing behind when it does not apply: its lease write says whether the lease
held and the unit returns False without writing anything else when it was lost, instead of
raising to roll back. A unit that names its lease (`run(..., lease=)`) has it checked with the
others of its transaction in one SELECT first (`engine/leases.check_leases`), and its lease write
waits for one executemany per statement at the end; otherwise the write is its own
`UPDATE ... WHERE lock_token`. Rows a unit inserts are handed to `Batch.insert` and inserted
together at the end (one executemany per table: "the outbox rows inserted together"), after the
statements units leave for the end (`Batch.later`). If anything fails in a shared transaction (a
unit raises, a constraint, a deadlock on PostgreSQL), it is rolled back and every unit of it runs
again in a transaction of its own, so one unit's failure stays its own and reaches only its
caller.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from novita_manager.engine.leases import Lease, check_leases, flush_deferred
from novita_manager.logging import get_logger
from novita_manager.store.db import Database

T = TypeVar("T")
log = get_logger(__name__)

# Units per transaction at most: bounds how long a transaction holds the writer (SQLite) or its
# row locks (PostgreSQL), and how much work one failure makes run again alone.
MAX_UNITS = 64
# Shared transactions written at once. SQLite has one writer, so one. On PostgreSQL a
# transaction's statements are round trips, and one writer at a time made the round trips of a
# burst's writes the pipeline's bound (lifecycle bench: rows waited seconds to be claimed while
# the service's CPU was half idle); several run side by side, each in its own connection.
WRITERS = {"sqlite": 1, "postgresql": 4}
# While units stream in (the last transaction held at least this many and committed within
# `STREAM_WINDOW` seconds), a group commit with a `linger` waits that long before it takes its
# next batch, so that more units share it (see `GroupCommit.__init__`).
STREAM_UNITS = 4
STREAM_WINDOW = 0.1


@dataclass(frozen=True, slots=True)
class NewRow:
    """A row to insert: its model and the values of the columns it sets (the others take their
    column defaults). What a step adds beside its own row is built as this, not as an ORM object:
    three of those per instance reaching running cost 34 us of instrumented attribute sets, the
    values 1 us, and `Batch.insert` reads only the values."""

    model: type[Any]
    values: dict[str, Any]


class Batch:
    """What a unit writes besides its statements: rows inserted at the end of the transaction."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self._inserts: dict[type[Any], list[dict[str, Any]]] = {}
        self._later: dict[Any, list[dict[str, Any]]] = {}

    def later(self, statement: Any, parameters: dict[str, Any]) -> None:
        """Execute `statement` with `parameters` at the end of the transaction, in one
        executemany with the other units' (a statement whose effect does not depend on when in
        the transaction it runs, such as waking other rows)."""
        self._later.setdefault(statement, []).append(parameters)

    def insert(self, *rows: Any) -> None:
        """Insert `NewRow`s or ORM objects (their set columns) with the others of their table,
        at the end."""
        for row in rows:
            if isinstance(row, NewRow):
                self._inserts.setdefault(row.model, []).append(row.values)
                continue
            model = type(row)
            values = {
                column.key: row.__dict__[column.key]
                for column in model.__table__.columns
                if column.key in row.__dict__
            }
            self._inserts.setdefault(model, []).append(values)

    async def flush(self) -> None:
        await flush_deferred(self.session)  # the lease writes kept (engine/leases.check_leases)
        later, self._later = self._later, {}
        for statement, parameters in later.items():
            await self.session.execute(statement, parameters)
        inserts, self._inserts = self._inserts, {}
        for model, rows in inserts.items():
            by_shape: dict[tuple[str, ...], list[dict[str, Any]]] = {}
            for values in rows:
                by_shape.setdefault(tuple(sorted(values)), []).append(values)
            for shape_rows in by_shape.values():  # Core executemany: no ORM bulk-insert pass
                await self.session.execute(insert(model.__table__), shape_rows)


Unit = Callable[[Batch], Awaitable[T]]


class _Pending(Generic[T]):
    __slots__ = ("future", "key", "lease", "unit")

    def __init__(
        self, unit: Unit[T], future: asyncio.Future[T], key: str, lease: Lease | None
    ) -> None:
        self.unit = unit
        self.future = future
        self.key = key
        self.lease = lease


class GroupCommit:
    """Runs units of work in shared transactions, one transaction at a time (module docstring)."""

    def __init__(
        self,
        db: Database,
        *,
        model: type[Any] | None = None,
        max_units: int = MAX_UNITS,
        writers: int | None = None,
        linger: float = 0.0,
    ) -> None:
        """`linger`: seconds to wait for more units while they stream in, for callers whose
        result nobody waits on (a webhook's record after it arrived): a transaction's fixed
        cost (its session, begin, lease check and commit) was most of a small batch's."""
        self.db = db
        self.model = model  # the table whose leases the units' `lease` name (`run`)
        self.max_units = max_units
        self.max_writers = writers or WRITERS.get(db.dialect, 1)
        self.linger = linger
        self._last_units = 0  # units of the last shared transaction
        self._last_commit = 0.0  # when it committed (time.monotonic)
        self._queue: list[_Pending[Any]] = []
        self._writers: set[asyncio.Task[None]] = set()
        self.transactions = 0  # committed shared transactions (for tests and benchmarks)
        self.units = 0  # units committed in them
        # Called after each commit (the live event stream's hub reads new events at once).
        self.on_commit: Callable[[], None] | None = None

    async def run(self, unit: Unit[T], key: str = "", lease: Lease | None = None) -> T:
        """Run `unit` in a transaction shared with the units queued beside it; its result.

        `key`: the id of the row the unit writes. A shared transaction runs its units in key
        order, so two transactions that write the same rows (another process's, the status
        sync's, sorted by id too) take their row locks in one order and cannot deadlock on
        PostgreSQL. `lease`: the lease of that row (in `model`'s table) the unit writes under;
        a shared transaction checks all of them with one statement first, and the units'
        lease writes go out as one executemany (engine/leases.check_leases)."""
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.append(_Pending(unit, future, key, lease))
        # A writer that found the queue empty is done before its task is (a done callback would
        # come a loop turn later, and this unit would wait for a writer that has left).
        self._writers = {writer for writer in self._writers if not writer.done()}
        if len(self._writers) < self.max_writers:
            self._writers.add(asyncio.create_task(self._write_all(), name="group-commit"))
        return await future

    def _streaming(self) -> bool:
        return (
            self._last_units >= STREAM_UNITS
            and time.monotonic() - self._last_commit < STREAM_WINDOW
        )

    async def _write_all(self) -> None:
        while self._queue:
            if self.linger and len(self._queue) < self.max_units and self._streaming():
                await asyncio.sleep(self.linger)
            batch, self._queue = self._queue[: self.max_units], self._queue[self.max_units :]
            batch = [pending for pending in batch if not pending.future.done()]
            if not batch:
                continue
            try:
                await self._together(batch)
            except Exception as error:
                if len(batch) > 1:
                    log.info("group_commit_split", units=len(batch), error=str(error)[:200])
                    for pending in batch:
                        await self._alone(pending)
                else:
                    _settle(batch[0], error=error)
            except BaseException as error:  # cancelled: callers must not wait forever
                for pending in [*batch, *self._queue]:
                    _settle(pending, error=error)
                self._queue = []
                raise

    async def _together(self, batch: list[_Pending[Any]]) -> None:
        results: list[Any] = []
        batch = sorted(batch, key=lambda pending: pending.key)  # lock order: see `run`
        async with self.db.session() as session, session.begin():
            writes = Batch(session)
            leases = [pending.lease for pending in batch if pending.lease is not None]
            if self.model is not None and len(leases) > 1:
                await check_leases(session, self.model, leases, dialect=self.db.dialect)
            for pending in batch:
                results.append(await pending.unit(writes))
            await writes.flush()
        self.transactions += 1
        self.units += len(batch)
        self._last_units, self._last_commit = len(batch), time.monotonic()
        self._committed()
        for pending, result in zip(batch, results, strict=True):
            _settle(pending, result=result)

    async def _alone(self, pending: _Pending[Any]) -> None:
        try:
            async with self.db.session() as session, session.begin():
                writes = Batch(session)
                result = await pending.unit(writes)
                await writes.flush()
        except Exception as error:
            _settle(pending, error=error)
        else:
            self.transactions += 1
            self.units += 1
            self._committed()
            _settle(pending, result=result)

    def _committed(self) -> None:
        if self.on_commit is not None:
            self.on_commit()


def _settle(
    pending: _Pending[Any], *, result: Any = None, error: BaseException | None = None
) -> None:
    if pending.future.done():
        return
    if error is not None:
        with contextlib.suppress(asyncio.InvalidStateError):
            pending.future.set_exception(error)
    else:
        pending.future.set_result(result)
