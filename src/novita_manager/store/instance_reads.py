"""The read path of the instances API: one indexed SELECT of the view's columns, no ORM.

GET /api/instances/{id} and the list are the most frequent requests; through the ORM session
each cost several times the framework's own floor (issue 15: session set-up, identity map,
per-row instrumentation and, on SQLite, six hops to aiosqlite's thread per read). Here:

- The statements are SQLAlchemy Core, built once, selecting `instance_rows.ROW_COLUMNS` only
  (the cluster falls back to the one the last observation named, extracted in SQL rather than
  by decoding the whole observation in Python).
- On SQLite they run on a plain `sqlite3` connection of this process, in the event loop's
  thread: an indexed read in WAL mode takes microseconds and never waits for the writer, so a
  thread hop would cost more than the read. The SQL is the Core statement compiled for SQLite
  once.
- On PostgreSQL they run on a small asyncpg pool of their own (no ORM session, no pre-ping per
  checkout; asyncpg caches the prepared statements).

Rows come back as the driver gives them (tuples, asyncpg records); `render` (from
`store.instance_rows`, with this driver's timestamp handling) makes each the view's dict.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import ColumnElement, Select, bindparam, func, or_, select
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import URL

from novita_manager.domain.statuses import Status
from novita_manager.store.db import Database
from novita_manager.store.instance_rows import ROW_COLUMNS, Renderer, renderer
from novita_manager.store.models import Instance

if TYPE_CHECKING:  # imported where PostgreSQL is used: 3 MiB a SQLite service never needs
    import asyncpg

Row = Sequence[Any]  # the values of `ROW_COLUMNS`, as the driver returns them
SQLITE_READ_BUSY_MS = 2000  # WAL readers do not wait for writers; only recovery could block
POSTGRES_READERS = 4  # connections of the read pool, beside the ORM's pool

_TABLE = Instance.__table__
_COMPUTED: dict[str, ColumnElement[Any]] = {
    "cluster_id": func.coalesce(Instance.cluster_id, Instance.observation["clusterId"].as_string()),
    # `failure_reason or last_error`: an empty failure reason counts as none.
    "last_error": func.coalesce(func.nullif(Instance.failure_reason, ""), Instance.last_error),
}
_SELECTED = [
    _COMPUTED[name].label(name) if name in _COMPUTED else _TABLE.c[name] for name in ROW_COLUMNS
]


def _sqlite_time(raw: str) -> str:
    """SQLite's stored UTC text (`2026-01-02 03:04:05.678901`, microseconds always written) as
    the API's ISO-8601 (`2026-01-02T03:04:05.678901Z`, microseconds left out when zero, like
    `datetime.isoformat`): a string operation instead of parsing and formatting a datetime."""
    if raw.endswith(".000000"):
        raw = raw[:-7]
    return f"{raw[:10]}T{raw[11:]}Z"


def _sqlite_moment(raw: str) -> datetime:
    return datetime.fromisoformat(raw + "+00:00")  # 4x cheaper than .replace(tzinfo=UTC)


def _same(value: Any) -> Any:
    return value


def by_key_statement() -> Select[Any]:
    """One instance by our id or by its Novita id (both indexed)."""
    key = bindparam("key", type_=Instance.id.type)
    return (
        select(*_SELECTED)
        .where(or_(Instance.id == key, Instance.novita_instance_id == key))
        .limit(1)
    )


def page_statements(has_status: bool, has_name: bool) -> tuple[Select[Any], Select[Any]]:
    """The count and the page (newest first) of the list endpoint, with bound parameters
    `status`, `pattern`, `limit` and `offset`: four shapes in all, each compiled once.

    The page carries the count as its last column (`total`, an uncorrelated subquery both
    databases evaluate once): one statement, so one snapshot and one round trip, where a
    count and a page needed a transaction around two (four round trips on PostgreSQL). The
    count alone is for a page that came back empty."""
    conditions: list[ColumnElement[bool]] = [
        Instance.status == bindparam("status")
        if has_status
        else Instance.status != Status.DELETED.value
    ]
    if has_name:
        conditions.append(Instance.name.ilike(bindparam("pattern"), escape="\\"))
    count = select(func.count()).select_from(Instance).where(*conditions)
    page = (
        select(*_SELECTED, count.scalar_subquery().label("total"))
        .where(*conditions)
        .order_by(Instance.created_at.desc(), Instance.id.desc())
        .limit(bindparam("limit"))
        .offset(bindparam("offset"))
    )
    return count, page


def page_params(status: Status | None, name: str | None, limit: int, offset: int) -> dict[str, Any]:
    params: dict[str, Any] = {"limit": limit, "offset": offset}
    if status is not None:
        params["status"] = status.value
    if name:
        escaped = name.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        params["pattern"] = f"%{escaped}%"
    return params


_BY_KEY = by_key_statement()
_PAGES = {
    (has_status, has_name): page_statements(has_status, has_name)
    for has_status in (False, True)
    for has_name in (False, True)
}


Compiled = tuple[str, list[str], dict[str, Any]]


def compile_for(statement: Select[Any], dialect: Any) -> Compiled:
    """The SQL for `dialect`, the order of its parameters, and the statement's own constants as
    the driver must receive them (a JSON path, say, goes through its type's bind processor)."""
    compiled = statement.compile(dialect=dialect)
    constants = {}
    for name, value in compiled.params.items():
        processor = compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect)
        constants[name] = processor(value) if processor and value is not None else value
    return str(compiled), list(compiled.positiontup or []), constants


class InstanceReads:
    """Reads of instance views for the API, on the database's own fast path (`open`): rows of
    `ROW_COLUMNS` as the driver returns them, and `render` to make each the view's dict."""

    def __init__(self, dialect: Any, render: Renderer) -> None:
        self._dialect = dialect
        self.render = render
        self._compiled: dict[int, Compiled] = {}  # by statement (they live as long as the module)

    @staticmethod
    async def open(db: Database) -> InstanceReads:
        if db.dialect == "sqlite":
            path = db.engine.url.database
            assert path is not None
            return SqliteReads(path)
        return await PostgresReads.connect(db.engine.url.set(drivername="postgresql"))

    async def close(self) -> None:
        raise NotImplementedError

    async def by_key(self, key: str) -> Row | None:
        rows = await self.rows(_BY_KEY, {"key": key})
        return rows[0] if rows else None

    async def page(
        self, status: Status | None, name: str | None, limit: int, offset: int
    ) -> tuple[int, list[Row]]:
        """The total and the page, from one statement (so one snapshot): each row ends with
        the total, which `render` leaves aside."""
        count, page = _PAGES[(status is not None, bool(name))]
        params = page_params(status, name, limit, offset)
        rows = await self.rows(page, params)
        if rows:
            return int(rows[0][-1]), rows
        if offset == 0:
            return 0, rows
        return int(await self.value(count, params)), rows  # past the end: count alone

    async def value(self, statement: Select[Any], params: dict[str, Any]) -> Any:
        raise NotImplementedError

    async def rows(self, statement: Select[Any], params: dict[str, Any]) -> list[Row]:
        raise NotImplementedError

    def _args(self, statement: Select[Any], params: dict[str, Any]) -> tuple[str, list[Any]]:
        compiled = self._compiled.get(id(statement))
        if compiled is None:
            compiled = self._compiled[id(statement)] = compile_for(statement, self._dialect)
        sql, order, constants = compiled
        return sql, [params[n] if n in params else constants[n] for n in order]


class SqliteReads(InstanceReads):
    """A plain `sqlite3` connection used in the event loop's thread: an indexed read in WAL mode
    takes microseconds and never waits for the writer, less than a hop to another thread.
    Timestamps are SQLite's stored text, written as the API's text by `_sqlite_time`."""

    def __init__(self, path: str) -> None:
        super().__init__(sqlite_dialect.dialect(), renderer(_sqlite_time, _sqlite_moment))
        self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._conn.execute(f"PRAGMA busy_timeout={SQLITE_READ_BUSY_MS}")
        self._conn.execute("PRAGMA query_only=ON")

    async def close(self) -> None:
        self._conn.close()

    async def rows(self, statement: Select[Any], params: dict[str, Any]) -> list[Row]:
        sql, args = self._args(statement, params)
        return self._conn.execute(sql, args).fetchall()

    async def value(self, statement: Select[Any], params: dict[str, Any]) -> Any:
        sql, args = self._args(statement, params)
        return self._conn.execute(sql, args).fetchone()[0]


async def _keep_session(_conn: asyncpg.Connection) -> None:
    """The pool's reset of a connection given back: nothing to undo. These connections only run
    the SELECTs above, so asyncpg's default (`RESET ALL`, `UNLISTEN *`, ... : a round trip per
    read, a tenth of `GET /api/instances/{id}` on the profile) has nothing to reset; an open
    transaction is still rolled back by the pool before this is called."""


class PostgresReads(InstanceReads):
    """A small asyncpg pool of its own: no ORM, no pre-ping per checkout, prepared statements
    cached by asyncpg. Timestamps arrive as aware datetimes (orjson writes them); JSON as text."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        from sqlalchemy.dialects.postgresql import asyncpg as postgresql_dialect

        super().__init__(postgresql_dialect.dialect(), renderer(_same, _same))  # type: ignore[no-untyped-call]
        self._pool = pool

    @classmethod
    async def connect(cls, url: URL) -> PostgresReads:
        import asyncpg

        dsn = url.render_as_string(hide_password=False)
        pool = await asyncpg.create_pool(
            dsn, min_size=1, max_size=POSTGRES_READERS, reset=_keep_session
        )
        return cls(pool)

    async def close(self) -> None:
        await self._pool.close()

    async def rows(self, statement: Select[Any], params: dict[str, Any]) -> list[Row]:
        sql, args = self._args(statement, params)
        async with self._pool.acquire() as conn:
            return cast(list[Row], await conn.fetch(sql, *args))  # records are sequences

    async def value(self, statement: Select[Any], params: dict[str, Any]) -> Any:
        sql, args = self._args(statement, params)
        async with self._pool.acquire() as conn:
            return await conn.fetchval(sql, *args)
