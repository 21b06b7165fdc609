"""Apply the Alembic migrations programmatically (at start-up, from `Database.open`).

One migration tree serves both dialects. On PostgreSQL the upgrade runs in one transaction under a
transaction-level advisory lock, so replicas that start together queue up and the later ones find
the schema already at head. SQLite needs no lock: the single-process guard already holds the file.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncEngine

MIGRATIONS = Path(__file__).with_name("migrations")
# Arbitrary constant shared by every replica: "novita-manager migrations".
ADVISORY_LOCK_KEY = 0x4E4D_4D49_4752


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


async def upgrade(engine: AsyncEngine) -> None:
    """Bring the schema to the newest revision; safe to call from several replicas at once."""
    async with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            lock = text("SELECT pg_advisory_xact_lock(:key)")
            await conn.execute(lock, {"key": ADVISORY_LOCK_KEY})
        await conn.run_sync(_upgrade)
        await conn.commit()


def _upgrade(connection: Connection) -> None:
    command.upgrade(alembic_config(connection), "head")
