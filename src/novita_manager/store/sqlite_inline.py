"""SQLite for SQLAlchemy's asyncio engine without a thread per connection.

aiosqlite runs every call (each execute, each cursor, each close) on a thread of its own and
wakes the event loop with the result: three thread hops and three loop wake-ups per statement,
each resuming the whole awaiting coroutine chain. Profiled on the lifecycle benchmark, that
machinery and its wake-ups cost more CPU than SQLite itself; a statement on a local WAL file
takes microseconds. Here the statements run inline, on the event loop's thread.

What a thread gave for free is kept by other means:
- Waiting for the write lock held by another process never blocks the loop: the connection's
  busy timeout is 0, and a statement refused with SQLITE_BUSY is retried after an asyncio sleep
  (1 ms doubling to 10 ms) until `busy_timeout` seconds have passed, as SQLite's own busy
  handler would have slept. Every write transaction begins with `BEGIN IMMEDIATE`
  (store/db.py), so the lock is taken before anything is written and a retried statement has
  no half-done work behind it.
- Checkpoints are not made by commits on the loop (SQLite's automatic checkpoint copied and
  synced 1,000 pages inline, tens of milliseconds): store/db.py turns them off and runs
  `store/wal_checkpoint.WalCheckpointer`, a thread of its own.

Plugged in with `create_async_engine(..., module=inline_dbapi())`, on SQLAlchemy's aiosqlite
dialect, which is otherwise unchanged (its SQL, types and pool).
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar, cast

from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_dbapi,
)

T = TypeVar("T")

SQLITE_BUSY = 5
SQLITE_BUSY_SNAPSHOT = SQLITE_BUSY | (2 << 8)  # a stale read snapshot: retrying cannot help
FIRST_PAUSE = 0.001
LONGEST_PAUSE = 0.01


def _busy(error: sqlite3.OperationalError) -> bool:
    code = getattr(error, "sqlite_errorcode", None)
    if not isinstance(code, int):  # an error raised by the sqlite3 module itself, not SQLite
        return False
    return code & 0xFF == SQLITE_BUSY and code != SQLITE_BUSY_SNAPSHOT


async def _patiently(call: Callable[[], T], busy_timeout: float) -> T:
    """`call()`, again after a pause while another connection holds the lock it needs."""
    deadline: float | None = None
    pause = FIRST_PAUSE
    while True:
        try:
            return call()
        except sqlite3.OperationalError as error:
            if not _busy(error):
                raise
            now = time.monotonic()
            if deadline is None:
                deadline = now + busy_timeout
            elif now >= deadline:
                raise
            await asyncio.sleep(min(pause, max(deadline - now, 0.0)))
            pause = min(pause * 2, LONGEST_PAUSE)


class InlineCursor:
    """aiosqlite's cursor interface (as SQLAlchemy's adapter calls it) over a sqlite3 cursor."""

    __slots__ = ("_busy_timeout", "_cursor")

    def __init__(self, cursor: sqlite3.Cursor, busy_timeout: float) -> None:
        self._cursor = cursor
        self._busy_timeout = busy_timeout

    async def __aenter__(self) -> InlineCursor:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        self._cursor.close()

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    @property
    def arraysize(self) -> int:
        return self._cursor.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._cursor.arraysize = value

    async def execute(self, sql: str, parameters: Any = ()) -> InlineCursor:
        cursor = self._cursor
        await _patiently(lambda: cursor.execute(sql, parameters), self._busy_timeout)
        return self

    async def executemany(self, sql: str, parameters: Iterable[Any]) -> InlineCursor:
        rows = list(parameters)  # a generator cannot be replayed after SQLITE_BUSY
        cursor = self._cursor
        await _patiently(lambda: cursor.executemany(sql, rows), self._busy_timeout)
        return self

    async def fetchone(self) -> Any:
        return self._cursor.fetchone()

    async def fetchmany(self, size: int | None = None) -> Sequence[Any]:
        return self._cursor.fetchmany(size if size is not None else self._cursor.arraysize)

    async def fetchall(self) -> Sequence[Any]:
        return self._cursor.fetchall()

    async def close(self) -> None:
        self._cursor.close()


class InlineConnection:
    """aiosqlite's connection interface over a sqlite3 connection used on the loop's thread.
    `_connection` is None once closed, as in aiosqlite (SQLAlchemy's adapter checks it)."""

    def __init__(self, connection: sqlite3.Connection, busy_timeout: float) -> None:
        self._connection: sqlite3.Connection | None = connection
        self._busy_timeout = busy_timeout

    @property
    def _open(self) -> sqlite3.Connection:
        if self._connection is None:
            raise ValueError("Connection closed")
        return self._connection

    @property
    def isolation_level(self) -> str | None:
        return self._open.isolation_level

    @isolation_level.setter
    def isolation_level(self, value: Any) -> None:
        self._open.isolation_level = value

    def cursor(self) -> InlineCursor:
        return InlineCursor(self._open.cursor(), self._busy_timeout)

    async def execute(self, sql: str, parameters: Any = ()) -> InlineCursor:
        return await self.cursor().execute(sql, parameters)

    async def commit(self) -> None:
        await _patiently(self._open.commit, self._busy_timeout)

    async def rollback(self) -> None:
        self._open.rollback()

    async def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()

    async def create_function(self, *args: Any, **kwargs: Any) -> None:
        self._open.create_function(*args, **kwargs)


class AsyncAdapt_inline_connection(AsyncAdapt_aiosqlite_connection):
    """SQLAlchemy's aiosqlite adapter, but reaching the connection directly (no worker queue)."""

    __slots__ = ()

    @property
    def isolation_level(self) -> str | None:
        return self._connection.isolation_level  # type: ignore[no-any-return]

    @isolation_level.setter
    def isolation_level(self, value: str | None) -> None:
        self._connection.isolation_level = value

    def _terminate_force_close(self) -> None:
        """Close at once, without a coroutine (a terminate may come outside any greenlet)."""
        connection = self._connection._connection
        self._connection._connection = None
        if connection is not None:
            connection.close()


class InlineDBAPI(AsyncAdapt_aiosqlite_dbapi):
    """The DB-API module SQLAlchemy's aiosqlite dialect uses, connecting inline."""

    def __init__(self) -> None:
        super().__init__(sqlite3, sqlite3)  # sqlite3 has aiosqlite's error names
        self.has_stop = False

    def connect(self, *args: Any, **kwargs: Any) -> AsyncAdapt_inline_connection:  # type: ignore[override]
        kwargs.pop("async_creator_fn", None)
        busy_timeout = float(kwargs.pop("timeout", 5.0))
        # The retries above do the waiting; SQLite's own handler would block the loop.
        kwargs["check_same_thread"] = False  # one loop thread uses it, never two at once
        kwargs["timeout"] = 0
        connection = sqlite3.connect(*args, **kwargs)
        inline = InlineConnection(connection, busy_timeout)
        return AsyncAdapt_inline_connection(self, cast(Any, inline))


def inline_dbapi() -> InlineDBAPI:
    return InlineDBAPI()
