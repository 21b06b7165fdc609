"""Apply the Alembic migrations programmatically (at start-up, from `Database.open`).

One migration tree serves both dialects. On PostgreSQL the upgrade runs in one transaction under a
transaction-level advisory lock, so replicas that start together queue up and the later ones find
the schema already at head. SQLite needs no lock: the single-process guard already holds the file.

A schema already at head (every start but the first after an upgrade of the package) is
recognised without Alembic: one read of `alembic_version` compared with `HEAD_REVISION`.
Alembic (with Mako) is imported only when an upgrade is due: its import and the load of the
migration scripts cost about 9 MiB in each of `serve`'s two processes, which nothing else uses
(docs/design.md "Memory"). tests/store/test_migrate.py keeps `HEAD_REVISION` equal to Alembic's
head, so a new migration cannot be forgotten here.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncEngine

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).with_name("migrations")
HEAD_REVISION = "0005"  # the newest file in migrations/versions (tests/store/test_migrate.py)
VERSION_TABLE = "alembic_version"  # Alembic's default; env.py keeps it
# Arbitrary constant shared by every replica: "novita-manager migrations".
ADVISORY_LOCK_KEY = 0x4E4D_4D49_4752


def alembic_config(connection: Connection | None = None) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The revision this version of the package migrates to."""
    return HEAD_REVISION


def alembic_head_revision() -> str:
    """The head as Alembic finds it in the scripts (slow: loads every migration file)."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def current_revision(connection: Connection) -> str | None:
    """The schema's revision: None before the first migration (no version table, or no row);
    several rows (branches, which this tree never has) read as None, so they go to Alembic."""
    if not connection.dialect.has_table(connection, VERSION_TABLE):
        return None
    rows = connection.execute(text("SELECT version_num FROM alembic_version")).all()
    return str(rows[0][0]) if len(rows) == 1 else None


async def upgrade(engine: AsyncEngine) -> None:
    """Bring the schema to the newest revision; safe to call from several replicas at once."""
    async with engine.connect() as conn:
        at_head = await conn.run_sync(current_revision) == HEAD_REVISION
        await conn.rollback()  # SQLite: the check's BEGIN IMMEDIATE took the write lock
    if at_head:
        return
    async with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            lock = text("SELECT pg_advisory_xact_lock(:key)")
            await conn.execute(lock, {"key": ADVISORY_LOCK_KEY})
        await conn.run_sync(_upgrade)
        await conn.commit()


def _upgrade(connection: Connection) -> None:
    from alembic import command

    command.upgrade(alembic_config(connection), "head")
