"""The dialect-specific `INSERT` (its `ON CONFLICT`), without importing PostgreSQL's on SQLite.

SQLAlchemy's PostgreSQL dialect package is about 2.2 MiB of objects once imported (its types,
compiler and the asyncpg adapter's classes); a service on SQLite never uses it, and what a
`serve` process imports it keeps for its life, in each of its two processes (docs/design.md
"Memory"). So it is imported here, on first use, and only for a PostgreSQL database.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

    from sqlalchemy.dialects.postgresql import Insert as PostgresqlInsert
    from sqlalchemy.dialects.sqlite import Insert as SqliteInsert

    Insert = PostgresqlInsert | SqliteInsert


def insert_for(dialect: str) -> Callable[[Any], Insert]:
    """`insert(table)` of `dialect` ("postgresql" or "sqlite"), whose statements have
    `on_conflict_do_nothing` and `on_conflict_do_update`."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert

        return insert
    if dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert
    raise ValueError(f"no INSERT ... ON CONFLICT for dialect {dialect!r}")
