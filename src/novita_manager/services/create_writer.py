"""Creates that arrive together are written in one transaction: a group commit for the API.

Each create was a transaction of its own. On SQLite that is a `BEGIN IMMEDIATE` and a `COMMIT`
on the event loop's thread, on PostgreSQL five round trips, and the transaction around the
inserts was two thirds of a create's CPU in the API process (py-spy on `bench.lifecycle`, 50
creates in flight). Now a create queues its rows and waits for the outcome; one writer task
takes what is queued, writes each table with one statement, commits once and answers every
waiter. While it writes, new creates queue for the next round, so a round grows with the load
and a lone create waits for nothing but its own transaction.

What each request sees is unchanged:
- its 201 goes out only after the commit that holds its row;
- an Idempotency-Key already stored (or taken by an earlier create of the same round) makes the
  create lose the race, as a concurrent request did before (`write` returns False);
- when a row breaks a constraint, the round is written again unit by unit, so a bad row fails
  its own request only (when the database itself fails, every create of the round fails, as
  each would have alone);
- a request cancelled before its round began writes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Table, insert
from sqlalchemy.exc import DataError, IntegrityError

from novita_manager.logging import get_logger
from novita_manager.services import idempotency
from novita_manager.store.db import Database
from novita_manager.store.models import Instance, InstanceEvent

log = get_logger(__name__)

INSTANCES = cast(Table, Instance.__table__)
HISTORY = cast(Table, InstanceEvent.__table__)
MAX_ROUND = 64  # creates per transaction: bounds how long a round holds SQLite's one writer


@dataclass(frozen=True, slots=True)
class NewInstance:
    """The rows of one accepted create: its instance, its first history entry and, when the
    request had an Idempotency-Key, the key's row (its stored response)."""

    row: dict[str, Any]
    history: dict[str, Any]
    key_row: dict[str, Any] | None = None

    @property
    def key(self) -> str | None:
        return None if self.key_row is None else str(self.key_row["key"])


_Waiting = tuple[NewInstance, "asyncio.Future[bool]"]


class CreateWriter:
    """Writes queued creates in rounds of one transaction each (see the module docstring)."""

    def __init__(self, db: Database, max_round: int = MAX_ROUND) -> None:
        self._db = db
        self._max_round = max_round
        self._queue: deque[_Waiting] = deque()
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    async def write(self, unit: NewInstance) -> bool:
        """Store `unit`; False when its Idempotency-Key was stored first by another request."""
        if self._closed:
            raise RuntimeError("the service is shutting down")
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._queue.append((unit, future))
        if self._task is None:
            self._task = asyncio.create_task(self._drain(), name="create-writer")
        return await future

    async def close(self) -> None:
        """Write what is queued, then refuse new creates."""
        self._closed = True
        task = self._task
        if task is not None:
            with contextlib.suppress(Exception):
                await task

    async def _drain(self) -> None:
        try:
            await asyncio.sleep(0)  # the creates ready in this turn of the loop join the round
            while self._queue:
                round_ = self._next_round()
                if round_:
                    await self._write_round(round_)
        finally:
            self._task = None
            _fail(self._queue, RuntimeError("the create writer stopped"))
            self._queue.clear()

    def _next_round(self) -> list[_Waiting]:
        """Up to `max_round` queued creates, one per Idempotency-Key (a second create with the
        same key waits for the next round, where the first one's key is found taken)."""
        taken: list[_Waiting] = []
        later: list[_Waiting] = []
        keys: set[str] = set()
        while self._queue and len(taken) < self._max_round:
            waiting = self._queue.popleft()
            unit, future = waiting
            if future.done():  # cancelled while queued: its request is gone, write nothing
                continue
            key = unit.key
            if key is not None and key in keys:
                later.append(waiting)
                continue
            if key is not None:
                keys.add(key)
            taken.append(waiting)
        self._queue.extendleft(reversed(later))
        return taken

    async def _write_round(self, round_: list[_Waiting]) -> None:
        try:
            outcomes = await self._write([unit for unit, _ in round_])
        except asyncio.CancelledError:
            _fail(round_, RuntimeError("the create writer was cancelled"))
            raise
        except Exception as error:
            if len(round_) == 1 or not isinstance(error, IntegrityError | DataError):
                _fail(round_, error)  # the database itself failed: each alone would fail too
                return
            log.warning("create_round_failed_writing_one_by_one", creates=len(round_))
            for waiting in round_:
                if not waiting[1].done():  # its request may have gone meanwhile
                    await self._write_round([waiting])
            return
        for (_, future), written in zip(round_, outcomes, strict=True):
            if not future.done():
                future.set_result(written)

    async def _write(self, units: list[NewInstance]) -> list[bool]:
        """One transaction for `units`; for each, True if written, False if its key was taken."""
        async with self._db.session() as session, session.begin():
            stored: set[str] = set()
            key_rows = [unit.key_row for unit in units if unit.key_row is not None]
            if key_rows:
                result = await session.execute(idempotency.insert_keys(self._db.dialect), key_rows)
                stored = {str(key) for key in result.scalars()}
            written = [unit.key is None or unit.key in stored for unit in units]
            rows = [unit for unit, ok in zip(units, written, strict=True) if ok]
            if rows:
                await session.execute(insert(INSTANCES), [unit.row for unit in rows])
                await session.execute(insert(HISTORY), [unit.history for unit in rows])
        return written


def _fail(waiting: Iterable[_Waiting], error: BaseException) -> None:
    for _, future in waiting:
        if not future.done():
            future.set_exception(error)
