"""Database problems at start-up: one line naming the problem and what to do, never the password."""

from __future__ import annotations

import errno
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from alembic.util import CommandError
from sqlalchemy.exc import DatabaseError, DBAPIError, OperationalError

from novita_manager.app import create_app
from novita_manager.cli.exit_codes import ServeExitCode
from novita_manager.config import load_settings
from novita_manager.store.locking import DatabaseInUse
from novita_manager.store.startup import (
    DATABASE_EXIT_CODE,
    DatabaseStartupError,
    check_database,
    describe_open_error,
    open_database,
    redact_url,
)
from tests.fixtures.postgres import PostgresServer

SQLITE = "sqlite+aiosqlite:////srv/nm/x.db"
PG = "postgresql+asyncpg://app:hunter22@db.example:6543/novita"


class FakeAsyncpgError(Exception):
    def __init__(self, message: str, sqlstate: str) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate


def wrapped(orig: Exception, kind: type[DBAPIError] = DBAPIError) -> DBAPIError:
    return kind(statement=None, params=None, orig=orig)


def test_the_serve_exit_code_for_the_database_is_documented() -> None:
    assert DATABASE_EXIT_CODE == int(ServeExitCode.DATABASE) == 4


def test_redact_url_hides_only_the_password() -> None:
    assert redact_url(PG) == "postgresql+asyncpg://app:***@db.example:6543/novita"
    assert redact_url("sqlite+aiosqlite:///:memory:") == "sqlite+aiosqlite:///:memory:"
    assert redact_url(SQLITE) == SQLITE


@pytest.mark.parametrize(
    ("url", "error", "expected"),
    [
        (
            SQLITE,
            wrapped(sqlite3.DatabaseError("file is not a database"), DatabaseError),
            "/srv/nm/x.db is not a valid SQLite database (file is not a database)",
        ),
        (
            SQLITE,
            wrapped(sqlite3.DatabaseError("database disk image is malformed"), DatabaseError),
            "Restore it from a backup",
        ),
        (
            SQLITE,
            IsADirectoryError(errno.EISDIR, "Is a directory", "/srv/nm/x.db"),
            "/srv/nm/x.db is a directory. Set DATABASE_URL to a file path",
        ),
        (
            SQLITE,
            PermissionError(errno.EACCES, "Permission denied", "/srv/nm/x.db.lock"),
            "permission denied on /srv/nm/x.db.lock (Permission denied). "
            "Make the folder /srv/nm writable",
        ),
        (
            SQLITE,
            wrapped(sqlite3.OperationalError("attempt to write a readonly database")),
            "/srv/nm/x.db is read-only",
        ),
        (
            SQLITE,
            wrapped(sqlite3.OperationalError("unable to open database file"), OperationalError),
            "SQLite cannot open /srv/nm/x.db",
        ),
        (
            SQLITE,
            FileNotFoundError(errno.ENOENT, "No such file or directory", "/srv/nm"),
            "/srv/nm does not exist and cannot be created",
        ),
        (
            "sqlite+aiosqlite:///:memory:",
            ValueError("SQLite needs a file path"),
            "SQLite needs a file: an in-memory database is lost at exit",
        ),
        (
            SQLITE,
            DatabaseInUse("another novita-manager process is using /srv/nm/x.db (pid 7)"),
            "another novita-manager process is using /srv/nm/x.db (pid 7).",
        ),
        (
            SQLITE,
            CommandError("Can't locate revision identified by 'ffff'"),
            "written by a newer novita-manager",
        ),
        (
            PG,
            ConnectionRefusedError(111, "Connect call failed ('10.0.0.5', 6543)"),
            "cannot reach PostgreSQL at db.example:6543",
        ),
        (PG, TimeoutError(), "no answer from PostgreSQL at db.example:6543 (timed out)"),
        (
            PG,
            wrapped(FakeAsyncpgError('password authentication failed for user "app"', "28P01")),
            "PostgreSQL at db.example:6543 refused the login of user 'app' "
            '(password authentication failed for user "app"). Check the user name and password',
        ),
        (
            PG,
            wrapped(FakeAsyncpgError('database "novita" does not exist', "3D000")),
            "database 'novita' does not exist on PostgreSQL at db.example:6543. "
            "Create it (createdb novita)",
        ),
        (
            PG,
            wrapped(FakeAsyncpgError("permission denied for schema public", "42501")),
            "user 'app' lacks a privilege the migrations need",
        ),
        (PG, RuntimeError("strange\nthings"), "PostgreSQL at db.example:6543 failed (strange)"),
    ],
)
def test_each_problem_is_one_line_naming_it(url: str, error: Exception, expected: str) -> None:
    line = describe_open_error(error, url)
    assert line.startswith(f"Cannot open the database {redact_url(url)}: ")
    assert expected in line
    assert "\n" not in line
    assert "hunter22" not in line


def test_the_password_never_shows_even_in_the_drivers_words() -> None:
    error = ConnectionRefusedError(111, "could not connect as app:hunter22")
    assert "hunter22" not in describe_open_error(error, PG)


async def test_real_sqlite_failures_become_one_line(tmp_path: Path) -> None:
    corrupt = tmp_path / "corrupt.db"
    corrupt.write_bytes(bytes(range(256)) * 32)
    (tmp_path / "folder.db").mkdir()
    cases = {
        f"sqlite+aiosqlite:///{corrupt}": "is not a valid SQLite database",
        f"sqlite+aiosqlite:///{tmp_path}/folder.db": f"{tmp_path}/folder.db is a directory",
        "sqlite+aiosqlite:///:memory:": "SQLite needs a file",
    }
    for url, expected in cases.items():
        with pytest.raises(DatabaseStartupError, match=r"^Cannot open the database") as caught:
            await open_database(url)
        assert expected in str(caught.value)
        assert caught.value.__cause__ is not None  # the original, for the debug traceback


async def test_the_check_releases_the_file_for_the_service(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/ok.db"
    await check_database(url)
    db = await open_database(url)  # the single-process guard was released by the check
    try:
        with pytest.raises(DatabaseStartupError, match=r"this process .* already has"):
            await check_database(url)
    finally:
        await db.close()


async def test_postgres_login_and_missing_database(postgres_server: PostgresServer) -> None:
    port = postgres_server.port
    cases = {
        f"postgresql+asyncpg://nobody_here:pw1234@127.0.0.1:{port}/postgres": (
            "refused the login of user 'nobody_here'"
        ),
        f"postgresql+asyncpg://postgres:pw1234@127.0.0.1:{port}/no_such_db": (
            "database 'no_such_db' does not exist"
        ),
    }
    for url, expected in cases.items():
        with pytest.raises(DatabaseStartupError) as caught:
            await open_database(url)
        assert expected in str(caught.value)
        assert "pw1234" not in str(caught.value)


async def drive_lifespan(app: Callable[..., Any]) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []
    messages = [{"type": "lifespan.startup"}]

    async def receive() -> dict[str, Any]:
        return messages.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    with pytest.raises(DatabaseStartupError):
        await app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, receive, send)
    return sent


async def test_lifespan_failure_tells_uvicorn_one_line_not_a_traceback(tmp_path: Path) -> None:
    """Should the database break between `serve`'s check and the start."""
    corrupt = tmp_path / "corrupt.db"
    corrupt.write_bytes(b"not a database at all" * 100)
    settings = load_settings(
        database_url=f"sqlite+aiosqlite:///{corrupt}",
        novita_api_base_url="http://127.0.0.1:9/gpu-instance/openapi",
    )
    sent = await drive_lifespan(create_app(settings))
    assert [m["type"] for m in sent] == ["lifespan.startup.failed"]
    assert sent[0]["message"].startswith("Cannot open the database")
    assert "is not a valid SQLite database" in sent[0]["message"]
    assert "Traceback" not in sent[0]["message"]
