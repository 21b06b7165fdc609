"""The read path of the instances API: one indexed SELECT of the view's columns, no ORM.

GET /api/instances/{id} and the list are the most frequent requests; through the ORM session
each cost several times the framework's own floor (issue 15: session set-up, identity map,
per-row instrumentation and, on SQLite, six hops to aiosqlite's thread per read). Here:

- The statements are SQLAlchemy Core, built once, selecting `store.views.VIEW_COLUMNS` only
  (the cluster falls back to the one the last observation named, extracted in SQL rather than
  by decoding the whole observation in Python).
- On SQLite they run on a plain `sqlite3` connection of this process, in the event loop's
  thread: an indexed read in WAL mode takes microseconds and never waits for the writer, so a
  thread hop would cost more than the read. The SQL is the Core statement compiled for SQLite
  once; the values are decoded by the column types of the model (timestamps, JSON).
- On PostgreSQL they run through the async engine (asyncpg needs no thread).

Rows come back as plain mappings of `VIEW_COLUMNS`, ready for `store.views.render_instance`;
on SQLite their timestamps are already the API's ISO-8601 text (see `_sqlite_time`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any

import orjson
from sqlalchemy import JSON, Column, ColumnElement, Select, bindparam, func, or_, select
from sqlalchemy.dialects import sqlite as sqlite_dialect

from novita_manager.domain.statuses import Status
from novita_manager.store.db import Database
from novita_manager.store.models import Instance
from novita_manager.store.types import UTCDateTime
from novita_manager.store.views import VIEW_COLUMNS

Columns = dict[str, Any]
SQLITE_READ_BUSY_MS = 2000  # WAL readers do not wait for writers; only recovery could block

_TABLE = Instance.__table__
_OBSERVED_CLUSTER = Instance.observation["clusterId"].as_string()
_SELECTED = [
    func.coalesce(Instance.cluster_id, _OBSERVED_CLUSTER).label(name)
    if name == "cluster_id"
    else _TABLE.c[name]
    for name in VIEW_COLUMNS
]


def _sqlite_time(raw: str) -> str:
    """SQLite's stored UTC text (`2026-01-02 03:04:05.678901`, microseconds always written) as
    the API's ISO-8601 (`2026-01-02T03:04:05.678901Z`, microseconds left out when zero, like
    `datetime.isoformat`): a string operation instead of parsing and formatting a datetime."""
    if raw.endswith(".000000"):
        raw = raw[:-7]
    return f"{raw[:10]}T{raw[11:]}Z"


def _decoder(column: Any) -> Callable[[Any], Any] | None:
    """How a raw SQLite value of this column becomes what the ORM would have given."""
    if not isinstance(column, Column):
        return None  # computed in SQL (the cluster): a plain value
    if isinstance(column.type, UTCDateTime):
        return _sqlite_time
    if isinstance(column.type, JSON):
        return orjson.loads
    return None


# (index, decoder) of the selected columns that need one; applied to non-NULL values only.
_DECODERS = tuple((index, decode) for index, c in enumerate(_SELECTED) if (decode := _decoder(c)))


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
    `status`, `pattern`, `limit` and `offset`: four shapes in all, each compiled once."""
    conditions: list[ColumnElement[bool]] = [
        Instance.status == bindparam("status")
        if has_status
        else Instance.status != Status.DELETED.value
    ]
    if has_name:
        conditions.append(Instance.name.ilike(bindparam("pattern"), escape="\\"))
    count = select(func.count()).select_from(Instance).where(*conditions)
    page = (
        select(*_SELECTED)
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


def _compile_for_sqlite(statement: Select[Any]) -> tuple[str, list[str], dict[str, Any]]:
    """The SQL, the order of its parameters, and the statement's own constants as the driver
    must receive them (a JSON path, say, goes through its type's bind processor)."""
    dialect = sqlite_dialect.dialect()
    compiled = statement.compile(dialect=dialect)
    constants = {}
    for name, value in compiled.params.items():
        processor = compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect)
        constants[name] = processor(value) if processor and value is not None else value
    return str(compiled), list(compiled.positiontup or []), constants


class InstanceReads:
    """Reads of instance views for the API; `open` picks the path for the database's dialect."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._sqlite: sqlite3.Connection | None = None
        if db.dialect == "sqlite":
            path = db.engine.url.database
            assert path is not None
            self._sqlite = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self._sqlite.execute(f"PRAGMA busy_timeout={SQLITE_READ_BUSY_MS}")
            self._sqlite.execute("PRAGMA query_only=ON")
        self._compiled: dict[int, tuple[str, list[str], dict[str, Any]]] = {}

    def close(self) -> None:
        if self._sqlite is not None:
            self._sqlite.close()
            self._sqlite = None

    async def by_key(self, key: str) -> Columns | None:
        rows = await self._rows(_BY_KEY, {"key": key})
        return rows[0] if rows else None

    async def page(
        self, status: Status | None, name: str | None, limit: int, offset: int
    ) -> tuple[int, list[Columns]]:
        count, page = _PAGES[(status is not None, bool(name))]
        params = page_params(status, name, limit, offset)
        if self._sqlite is not None:
            # One read transaction: the total and the page come from the same snapshot.
            self._sqlite.execute("BEGIN")
            try:
                total = self._sqlite_scalar(count, params)
                rows = self._sqlite_rows(page, params)
            finally:
                self._sqlite.execute("COMMIT")
            return total, rows
        async with self._db.read_engine.connect() as conn:
            total = int((await conn.execute(count, params)).scalar_one())
            result = await conn.execute(page, params)
            return total, [dict(row._mapping) for row in result]

    async def _rows(self, statement: Select[Any], params: dict[str, Any]) -> list[Columns]:
        if self._sqlite is not None:
            return self._sqlite_rows(statement, params)
        async with self._db.read_engine.connect() as conn:
            result = await conn.execute(statement, params)
            return [dict(row._mapping) for row in result]

    def _sqlite_execute(self, statement: Select[Any], params: dict[str, Any]) -> sqlite3.Cursor:
        assert self._sqlite is not None
        compiled = self._compiled.get(id(statement))  # the statements live as long as the module
        if compiled is None:
            compiled = self._compiled[id(statement)] = _compile_for_sqlite(statement)
        sql, order, constants = compiled
        return self._sqlite.execute(
            sql, [params[n] if n in params else constants[n] for n in order]
        )

    def _sqlite_scalar(self, statement: Select[Any], params: dict[str, Any]) -> int:
        row = self._sqlite_execute(statement, params).fetchone()
        return int(row[0]) if row else 0

    def _sqlite_rows(self, statement: Select[Any], params: dict[str, Any]) -> list[Columns]:
        rows = []
        for raw in self._sqlite_execute(statement, params).fetchall():
            values = list(raw)
            for index, decode in _DECODERS:
                if values[index] is not None:
                    values[index] = decode(values[index])
            rows.append(dict(zip(VIEW_COLUMNS, values, strict=True)))
        return rows
