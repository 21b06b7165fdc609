"""The database handle: engine, sessions, migrations and the dialect quirks, in one place.

`DATABASE_URL` picks the dialect. SQLite (the embedded default) is one host's: the file is
guarded by `locking.ProcessLock` (held by the pipeline process of `serve`; its API process
writes beside it) and runs in WAL mode with foreign keys. Its statements run on the event
loop's thread (`sqlite_inline`: aiosqlite's thread hops cost more than SQLite itself), and a
writer that finds the lock taken waits with asyncio sleeps, never inside SQLite. SQLite has one
writer, so the pool holds ONE connection: sessions queue for it in asyncio, fairly, and every
transaction begins with `BEGIN IMMEDIATE` (a deferred one that reads and then writes can fail
with SQLITE_BUSY). The price: on SQLite a session holds the whole database from its first
statement until it ends, so keep sessions short, never do I/O inside one, and never open a
session while holding another (it would wait for itself until the pool timeout).
PostgreSQL (several replicas) uses asyncpg with a pool and pre-ping.
"""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from novita_manager.logging import get_logger
from novita_manager.store import migrate as migrations
from novita_manager.store.json_codec import JSON_CODEC
from novita_manager.store.locking import DatabaseInUse, ProcessLock
from novita_manager.store.pg_pool import ping_when_idle
from novita_manager.store.sqlite_inline import inline_dbapi
from novita_manager.store.wal_checkpoint import WalCheckpointer

__all__ = ["Database", "DatabaseInUse", "Dialect", "default_owner"]

Dialect = Literal["sqlite", "postgresql"]
SQLITE_BUSY_TIMEOUT_MS = 30_000
# Page cache per connection (SQLite's default is 2 MiB; up to five connections per process).
# A commit by another connection empties a connection's cache at its next transaction anyway,
# and a miss is a read from the OS's cache: at 10,000 instances the default held 11 MiB in the
# pipeline process, and 512 KiB cost no CPU on the lifecycle bench (docs/design.md "Memory").
SQLITE_CACHE_KIB = 512
log = get_logger(__name__)


def default_owner() -> str:
    """A process identity for lease columns: readable (host, pid) and unique per start."""
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class InlineSession(AsyncSession):
    """An AsyncSession that closes in place at the end of `async with` (SQLite only).

    SQLAlchemy closes a session leaving `async with` in a task of its own, shielded, so that a
    cancellation cannot abandon the close halfway (the connection must go back to the pool):
    a task, a shield and the wake-up of the waiting one, three turns of the event loop per
    session. On SQLite the statements run inline (`sqlite_inline`), so closing (a rollback of
    what is left, the connection back to its pool) never suspends and nothing can cancel it
    halfway: closed in place it costs no turn. Under read overload a turn of the API process's
    loop takes milliseconds, and a create (an idempotency lookup, then its transaction) waited
    six of them for nothing (docs/operations.md "Overload")."""

    async def __aexit__(self, type_: Any, value: Any, traceback: Any) -> None:
        await self.close()


class Database:
    """An open database. Create with `await Database.open(url)`; close with `await db.close()`."""

    def __init__(
        self,
        engine: AsyncEngine,
        dialect: Dialect,
        owner: str,
        process_lock: ProcessLock | None,
        read_engine: AsyncEngine | None = None,
    ) -> None:
        self.engine = engine
        self.read_engine = read_engine or engine
        self.dialect: Dialect = dialect
        self.owner = owner
        self._process_lock = process_lock
        session_class = InlineSession if dialect == "sqlite" else AsyncSession
        self._sessionmaker = async_sessionmaker(
            engine, class_=session_class, expire_on_commit=False
        )
        self._read_sessionmaker = async_sessionmaker(
            self.read_engine, class_=session_class, expire_on_commit=False
        )
        self._statement_sessionmaker = self._sessionmaker
        if dialect == "postgresql":
            # Without a transaction around it, a read or a lone statement costs no BEGIN and no
            # COMMIT or ROLLBACK: two round trips of three (see `statement_session`).
            solo = engine.execution_options(isolation_level="AUTOCOMMIT")
            self._read_sessionmaker = async_sessionmaker(solo, expire_on_commit=False)
            self._statement_sessionmaker = async_sessionmaker(solo, expire_on_commit=False)
        self._local_locks: dict[str, asyncio.Lock] = {}
        self._checkpointer: WalCheckpointer | None = None

    @classmethod
    async def open(
        cls, url: str, *, migrate: bool = True, owner: str | None = None, exclusive: bool = True
    ) -> Database:
        """Connect, take the SQLite single-process guard, and apply migrations.

        `exclusive=False` skips the guard: for an API-only process on SQLite, which only inserts
        rows and reads (WAL lets it write beside the one process that runs the pipelines and
        holds the guard; `serve` starts both, see cli/pipeline_worker.py)."""
        parsed = make_url(url)
        dialect = _dialect_of(parsed)
        process_lock = None
        if dialect == "sqlite":
            path = _sqlite_path(parsed)
            path.parent.mkdir(parents=True, exist_ok=True)
            if exclusive:
                process_lock = ProcessLock(path)
                process_lock.acquire()
            engine = _sqlite_engine(parsed)
            read_engine: AsyncEngine | None = _sqlite_read_engine(parsed)
        else:
            # 20 kept and 10 more for a burst (30 at most, as before): an overflow connection is
            # closed when given back, and connecting again (asyncpg tries TLS first) showed in
            # the profile of 50 creates in flight.
            engine = create_async_engine(
                parsed, pool_size=20, max_overflow=10, pool_recycle=1800, **JSON_CODEC
            )
            ping_when_idle(engine)  # not `pool_pre_ping`: a round trip at every checkout
            read_engine = None
        db = cls(engine, dialect, owner or default_owner(), process_lock, read_engine)
        if dialect == "sqlite":  # checkpoints off the loop (store/wal_checkpoint.py)
            db._checkpointer = WalCheckpointer(_sqlite_path(parsed))
            db._checkpointer.start()
        try:
            if migrate:
                await migrations.upgrade(engine)
        except BaseException:
            await db.close()
            raise
        log.info("database_opened", dialect=dialect, database=parsed.database)
        return db

    def session(self) -> AsyncSession:
        """A new session; use as `async with db.session() as s, s.begin(): ...`."""
        return self._sessionmaker()

    def read_session(self) -> AsyncSession:
        """A session for reads only (API GETs, the status sync's row list). On SQLite it uses its
        own read-only connections, which WAL lets run beside the single writer, so reads do not
        queue behind the pipelines' writes. On PostgreSQL each statement runs on its own, in
        autocommit: under READ COMMITTED each statement of a transaction sees its own snapshot
        anyway, so a transaction gave reads nothing but a BEGIN and a ROLLBACK round trip."""
        return self._read_sessionmaker()

    def statement_session(self) -> AsyncSession:
        """A session for work that is one statement, atomic by itself (a pipeline's claim, an
        `UPDATE ... RETURNING`): on PostgreSQL in autocommit, so the statement is its own
        transaction without BEGIN and COMMIT round trips (a burst's claims are a tenth of the
        pipeline process's CPU); elsewhere `session()`. Use like `session()`, with `begin()`:
        on PostgreSQL it then sends nothing. Never for two statements that must commit
        together."""
        return self._statement_sessionmaker()

    def local_lock(self, name: str) -> asyncio.Lock:
        """A process-local lock by name (pipelines serialise SQLite claims per table with it)."""
        return self._local_locks.setdefault(name, asyncio.Lock())

    async def ping(self) -> None:
        """One round trip to the server (for /health); raises when the database is unreachable."""
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def close(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.stop()
            self._checkpointer = None
        if self.read_engine is not self.engine:
            await self.read_engine.dispose()
        await self.engine.dispose()
        if self._process_lock is not None:
            self._process_lock.release()
            self._process_lock = None


def _dialect_of(url: URL) -> Dialect:
    backend = url.get_backend_name()
    if backend == "sqlite":
        return "sqlite"
    if backend == "postgresql":
        return "postgresql"
    raise ValueError(
        f"unsupported database {backend!r}: use sqlite+aiosqlite:// or postgresql+asyncpg://"
    )


def _sqlite_path(url: URL) -> Path:
    database = url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        raise ValueError("SQLite needs a file path, e.g. sqlite+aiosqlite:///./data/x.db")
    return Path(database).expanduser().resolve()


def _sqlite_engine(url: URL) -> AsyncEngine:
    engine = create_async_engine(
        url.set(database=str(_sqlite_path(url))),
        connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
        module=inline_dbapi(),
        pool_size=1,
        max_overflow=0,
        **JSON_CODEC,
        pool_timeout=SQLITE_BUSY_TIMEOUT_MS / 1000,
    )

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control from the driver so that `_on_begin` decides how to BEGIN.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA wal_autocheckpoint=0")  # WalCheckpointer's thread does them
        cursor.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


SQLITE_READERS = 4


def _sqlite_read_engine(url: URL) -> AsyncEngine:
    """Read-only connections: WAL gives each a consistent snapshot without blocking the writer."""
    engine = create_async_engine(
        url.set(database=str(_sqlite_path(url))),
        connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
        module=inline_dbapi(),
        pool_size=SQLITE_READERS,
        max_overflow=0,
        **JSON_CODEC,
        pool_timeout=SQLITE_BUSY_TIMEOUT_MS / 1000,
    )

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA query_only=ON")
        cursor.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
        cursor.close()

    return engine
