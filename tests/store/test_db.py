"""The database handle on both dialects: schema from migrations, dialect settings, ping."""

from __future__ import annotations

import asyncio

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, inspect, text

from novita_manager.store.db import SQLITE_CACHE_KIB, Database
from novita_manager.store.migrate import current_revision, head_revision
from novita_manager.store.models import Base


async def test_migrations_create_every_table_of_the_models(db: Database) -> None:
    async with db.engine.connect() as conn:
        tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
        revision = await conn.run_sync(current_revision)
    assert set(Base.metadata.tables) <= tables
    assert revision == head_revision()


async def test_migrations_match_the_models_exactly(db: Database) -> None:
    """A model change without a migration fails here (write one with alembic autogenerate)."""

    def diff(conn: Connection) -> list[object]:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(context, Base.metadata))

    async with db.engine.connect() as conn:
        assert await conn.run_sync(diff) == []


async def test_reopening_is_idempotent_and_ping_works(database_url: str) -> None:
    first = await Database.open(database_url)
    await first.ping()
    await first.close()
    second = await Database.open(database_url)
    await second.ping()
    assert second.dialect in ("sqlite", "postgresql")
    await second.close()


async def test_sqlite_settings(tmp_path: object) -> None:
    db = await Database.open(f"sqlite+aiosqlite:///{tmp_path}/sub/dir/x.db")
    try:
        assert db.dialect == "sqlite"
        async with db.session() as session:
            journal = (await session.execute(text("PRAGMA journal_mode"))).scalar()
            foreign_keys = (await session.execute(text("PRAGMA foreign_keys"))).scalar()
            busy = (await session.execute(text("PRAGMA busy_timeout"))).scalar()
            cache = (await session.execute(text("PRAGMA cache_size"))).scalar()
        async with db.read_session() as session:
            read_cache = (await session.execute(text("PRAGMA cache_size"))).scalar()
        assert (journal, foreign_keys) == ("wal", 1)
        # A small page cache on every connection (docs/design.md "Memory"): KiB when negative.
        assert cache == read_cache == -SQLITE_CACHE_KIB
        # SQLite's own busy handler would sleep on the event loop's thread; the inline driver
        # waits for the lock with asyncio sleeps instead (tests/store/test_sqlite_inline.py).
        assert busy == 0
    finally:
        await db.close()


@pytest.mark.postgres
async def test_concurrent_start_of_replicas_migrates_once(postgres_url: str) -> None:
    """PostgreSQL replicas starting together on an empty database serialise on the advisory
    lock: every one opens, the schema is at head, and exactly one version row exists.
    (On SQLite one process holds the file: covered by test_single_process.)"""
    dbs = await asyncio.gather(*(Database.open(postgres_url) for _ in range(4)))
    try:
        for db in dbs:
            await db.ping()
        async with dbs[0].engine.connect() as conn:
            revision = await conn.run_sync(current_revision)
            versions = (await conn.execute(text("SELECT count(*) FROM alembic_version"))).scalar()
            tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
        assert revision == head_revision()
        assert versions == 1
        assert set(Base.metadata.tables) <= tables
    finally:
        for db in dbs:
            await db.close()
