"""Start-up migrations: a schema at head is recognised without Alembic; any other is upgraded
(or refused when newer) by Alembic, on both dialects."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import inspect, text

from novita_manager.store import migrate
from novita_manager.store.db import Database
from novita_manager.store.startup import DATABASE_EXIT_CODE, DatabaseStartupError, open_database
from tests.fixtures.fresh_python import run_fresh


def test_the_known_head_is_alembics_head() -> None:
    """A new migration without `HEAD_REVISION` moved on would leave schemas un-upgraded."""
    assert migrate.alembic_head_revision() == migrate.HEAD_REVISION


async def test_a_schema_at_head_opens_without_importing_alembic(database_url: str) -> None:
    """In a fresh interpreter (this one has Alembic loaded): open a database at head, and Alembic
    (with Mako) is never imported; on an empty database it is, to migrate."""
    program = (
        "import asyncio, sys\n"
        "from novita_manager.store.db import Database\n"
        "async def main():\n"
        "    db = await Database.open(sys.argv[1])\n"
        "    await db.close()\n"
        "asyncio.run(main())\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'alembic', 'mako'}))\n"
    )

    def loaded() -> str:
        return run_fresh(program, database_url).strip().splitlines()[-1]  # after the log line

    assert loaded() == "['alembic', 'mako']"  # the first open migrates
    assert loaded() == "[]"


async def test_an_older_schema_is_upgraded_to_head(database_url: str) -> None:
    db = await Database.open(database_url, migrate=False)
    try:
        async with db.engine.connect() as conn:
            assert await conn.run_sync(migrate.current_revision) is None  # a fresh database
            config = migrate.alembic_config()

            def to_0004(connection: object) -> None:
                config.attributes["connection"] = connection
                command.upgrade(config, "0004")

            await conn.run_sync(to_0004)
            await conn.commit()
            assert await conn.run_sync(migrate.current_revision) == "0004"
        await migrate.upgrade(db.engine)
        async with db.engine.connect() as conn:
            assert await conn.run_sync(migrate.current_revision) == migrate.HEAD_REVISION
            tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
        assert "event_log" in tables  # made by 0005
    finally:
        await db.close()


async def test_a_newer_schema_is_refused_in_one_line(database_url: str) -> None:
    db = await Database.open(database_url)
    try:
        async with db.engine.connect() as conn:
            await conn.execute(text("UPDATE alembic_version SET version_num = 'ffff'"))
            await conn.commit()
    finally:
        await db.close()
    with pytest.raises(DatabaseStartupError, match="written by a newer novita-manager"):
        await open_database(database_url)


def test_the_serve_check_migrates_in_a_process_of_its_own(tmp_path: Path) -> None:
    """`serve`'s pre-flight migrates an empty database in a forked process: the service's own
    processes (forked from this one later) never hold Alembic."""
    url = f"sqlite+aiosqlite:///{tmp_path}/fresh.db"
    program = (
        "import sys\n"
        "from novita_manager.store.startup import check_database_or_exit\n"
        "check_database_or_exit(sys.argv[1])\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'alembic', 'mako'}))\n"
    )
    run = subprocess.run([sys.executable, "-c", program, url], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip().splitlines()[-1] == "[]"
    with sqlite3.connect(tmp_path / "fresh.db") as connection:
        [(revision,)] = connection.execute("SELECT version_num FROM alembic_version").fetchall()
    assert revision == migrate.HEAD_REVISION


def test_a_failed_serve_check_exits_with_the_childs_code(tmp_path: Path) -> None:
    (tmp_path / "folder.db").mkdir()
    program = (
        "import sys\n"
        "from novita_manager.store.startup import check_database_or_exit\n"
        "check_database_or_exit(sys.argv[1])\n"
        "print('not reached')\n"
    )
    url = f"sqlite+aiosqlite:///{tmp_path}/folder.db"
    run = subprocess.run([sys.executable, "-c", program, url], capture_output=True, text=True)
    assert run.returncode == DATABASE_EXIT_CODE
    assert "not reached" not in run.stdout
    assert run.stderr.strip().endswith(
        "is a directory. Set DATABASE_URL to a file path in it, "
        f"e.g. sqlite+aiosqlite:///{tmp_path}/folder.db/novita-manager.db."
    )
