"""Database problems at start-up, told in one line instead of a traceback.

`describe_open_error` maps an exception raised while opening the database (`Database.open`) to one
line that names the problem and what to do; it is pure, and never shows the URL's password.
`open_database` raises `DatabaseStartupError` carrying that line; `check_database_or_exit` is the
pre-flight of `novita-manager serve`: open, migrate and close, or print the line and exit with
`DATABASE_EXIT_CODE`. The traceback is logged at debug level only (`LOG_LEVEL=debug`).
`QuietStartupFailure` does the same for the app's lifespan, should the database break between the
pre-flight and the start: uvicorn then logs the line, not Starlette's traceback.
"""

from __future__ import annotations

import asyncio
import errno
import os
import re
import sqlite3
import sys
import threading
import traceback
from pathlib import Path

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from novita_manager.logging import get_logger
from novita_manager.store.db import Database
from novita_manager.store.locking import DatabaseInUse

__all__ = [
    "DATABASE_EXIT_CODE",
    "DatabaseStartupError",
    "QuietStartupFailure",
    "check_database",
    "check_database_or_exit",
    "describe_open_error",
    "open_database",
    "redact_url",
]

DATABASE_EXIT_CODE = 4
EXAMPLE_SQLITE_URL = "sqlite+aiosqlite:///./data/novita-manager.db"
log = get_logger(__name__)


class DatabaseStartupError(Exception):
    """The database cannot be opened; `str()` is one line naming the problem and what to do."""


def redact_url(url: str) -> str:
    """The URL as it can be shown: the password replaced by `***`."""
    try:
        parsed = make_url(url)
        return url if parsed.password is None else parsed.render_as_string(hide_password=True)
    except ArgumentError:
        return re.sub(r"(://[^:/@]*:)[^@/]*@", r"\1***@", url)


def describe_open_error(error: BaseException, url: str) -> str:
    """One line: which database, what is wrong with it, what to do. Pure: looks at nothing else."""
    parsed = _parse(url)
    problem = _problem(error, parsed)
    line = f"Cannot open the database {redact_url(url)}: {problem}"
    password = parsed.password if parsed is not None else None
    if password and len(str(password)) >= 3:
        line = line.replace(str(password), "***")
    return " ".join(line.split())  # one line, whatever the driver put in its message


def _parse(url: str) -> URL | None:
    try:
        return make_url(url)
    except ArgumentError:
        return None


def _problem(error: BaseException, url: URL | None) -> str:
    dialect = url.get_backend_name() if url is not None else ""
    if isinstance(error, DatabaseInUse):
        return f"{error}."
    if _is_alembic_error(error):
        return (
            f"its schema is not one this version knows ({error}); it was probably written by a "
            "newer novita-manager. Run that version, or restore a backup made by this one."
        )
    if dialect == "sqlite":
        return _sqlite_problem(error, url)
    if dialect == "postgresql":
        return _postgres_problem(error, url)
    return f"{_reason(error)}. Check DATABASE_URL."


def _is_alembic_error(error: BaseException) -> bool:
    """Alembic's CommandError (an unknown revision), without importing Alembic: it is loaded
    only when an upgrade runs (store/migrate.py), so an error of its own implies it is loaded."""
    util = sys.modules.get("alembic.util")
    return util is not None and isinstance(error, util.CommandError)


def _sqlite_problem(error: BaseException, url: URL | None) -> str:
    database = url.database if url is not None else None
    if not database or database == ":memory:" or database.startswith("file:"):
        return (
            "SQLite needs a file: an in-memory database is lost at exit and cannot be shared by "
            "the API and the pipelines. Set DATABASE_URL to a file path, e.g. "
            f"{EXAMPLE_SQLITE_URL}."
        )
    database = os.path.abspath(os.path.expanduser(database))
    if isinstance(error, IsADirectoryError):
        folder = os.path.abspath(error.filename or database)
        return (
            f"{folder} is a directory. Set DATABASE_URL to a file path in it, "
            f"e.g. sqlite+aiosqlite:///{Path(folder) / 'novita-manager.db'}."
        )
    if isinstance(error, OSError):
        return _file_problem(error, database)
    if isinstance(error, DBAPIError) and isinstance(error.orig, sqlite3.Error):
        reason = str(error.orig)
        lowered = reason.lower()
        if "not a database" in lowered or "malformed" in lowered or "encrypted" in lowered:
            return (
                f"{database} is not a valid SQLite database ({reason}): it is corrupted or another "
                "kind of file. Restore it from a backup, or move it away to start with an empty "
                "database."
            )
        if "readonly" in lowered or "read-only" in lowered:
            return (
                f"{database} is read-only ({reason}). Make the file and its folder writable by "
                "the user running the service."
            )
        if "unable to open" in lowered:
            return (
                f"SQLite cannot open {database} ({reason}). DATABASE_URL must name a file (not a "
                "directory) in a folder the service can write."
            )
        if "disk" in lowered and "full" in lowered:
            return f"the disk is full ({reason}). Free some space."
        return f"SQLite failed ({reason}). Check the file {database}."
    return f"{_reason(error)}. Check the file {database} and DATABASE_URL."


def _file_problem(error: OSError, database: str) -> str:
    name = str(error.filename or database)
    folder = Path(name).parent
    if error.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return (
            f"permission denied on {name} ({error.strerror}). Make the folder {folder} writable "
            "by the user running the service (SQLite keeps the database and its -wal, -shm and "
            ".lock files there)."
        )
    if error.errno in (errno.ENOENT, errno.ENOTDIR):
        return (
            f"{name} does not exist and cannot be created ({error.strerror}). Fix the path in "
            "DATABASE_URL."
        )
    if error.errno == errno.ENOSPC:
        return f"the disk is full ({name}). Free some space."
    return f"{error.strerror or error} on {name}. Check the path in DATABASE_URL."


# SQLSTATE classes and codes of PostgreSQL (appendix A of its manual).
_PG_LOGIN = "28"  # invalid authorization: bad password, unknown role, pg_hba refusal
_PG_NO_DATABASE = "3D000"
_PG_NO_PRIVILEGE = "42501"
_PG_TOO_MANY = "53300"
_PG_STARTING = ("57P03",)


def _sqlstate(error: BaseException) -> str | None:
    """The SQLSTATE of the driver's error anywhere in the cause chain (asyncpg sets `sqlstate`)."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        state = getattr(current, "sqlstate", None)
        if isinstance(state, str):
            return state
        if isinstance(current, DBAPIError) and isinstance(current.orig, BaseException):
            current = current.orig
        else:
            current = current.__cause__ or current.__context__
    return None


def _postgres_problem(error: BaseException, url: URL | None) -> str:
    where = f"{url.host or 'localhost'}:{url.port or 5432}" if url is not None else "its host"
    user = url.username if url is not None else None
    name = url.database if url is not None else None
    state = _sqlstate(error)
    reason = _reason(error)
    if state is not None and state.startswith(_PG_LOGIN):
        return (
            f"PostgreSQL at {where} refused the login of user {user!r} ({reason}). Check the user "
            "name and password in DATABASE_URL, and pg_hba.conf."
        )
    if state == _PG_NO_DATABASE:
        return (
            f"database {name!r} does not exist on PostgreSQL at {where}. Create it (createdb "
            f"{name}) or fix the database name in DATABASE_URL."
        )
    if state == _PG_NO_PRIVILEGE:
        return (
            f"user {user!r} lacks a privilege the migrations need ({reason}). Grant it CREATE on "
            f"the database {name!r} (or run the service as its owner)."
        )
    if state == _PG_TOO_MANY or state in _PG_STARTING:
        return f"PostgreSQL at {where} cannot take the connection now ({reason}). Retry shortly."
    if isinstance(error, TimeoutError | PoolTimeout | asyncio.TimeoutError):
        return (
            f"no answer from PostgreSQL at {where} (timed out). Check that it runs and that the "
            "host and port in DATABASE_URL are reachable from here."
        )
    if isinstance(error, OSError):
        return (
            f"cannot reach PostgreSQL at {where} ({reason}). Start PostgreSQL, or fix the host "
            "and port in DATABASE_URL."
        )
    return f"PostgreSQL at {where} failed ({reason}). Check DATABASE_URL and the server's log."


def _reason(error: BaseException) -> str:
    """The driver's own words: the DBAPI error's message without SQLAlchemy's decorations."""
    if isinstance(error, DBAPIError) and error.orig is not None:
        text = str(error.orig)
    else:
        text = str(error)
    text = text.split("\n", 1)[0].strip()
    return text or type(error).__name__


def _precheck(url: str) -> None:
    """Name the problems SQLite only reports as "unable to open database file"."""
    parsed = _parse(url)
    if parsed is None or parsed.get_backend_name() != "sqlite" or not parsed.database:
        return
    if parsed.database == ":memory:" or parsed.database.startswith("file:"):
        return
    path = Path(parsed.database).expanduser()
    if path.is_dir():
        raise IsADirectoryError(errno.EISDIR, "Is a directory", str(path))


async def open_database(url: str, *, exclusive: bool = True) -> Database:
    """`Database.open(url)`, with every failure turned into `DatabaseStartupError`."""
    try:
        _precheck(url)
        return await Database.open(url, exclusive=exclusive)
    except Exception as error:
        raise DatabaseStartupError(describe_open_error(error, url)) from error


async def check_database(url: str) -> None:
    """Open (migrating to the newest schema) and close again; raise `DatabaseStartupError`.

    Closing releases the SQLite single-process guard, so the service can open the file again.
    """
    db = await open_database(url)
    await db.close()


def check_database_or_exit(url: str) -> None:
    """For `serve`: print one line and exit `DATABASE_EXIT_CODE` when the database cannot open.

    On Linux the check runs in a forked process: when it has to migrate, Alembic and Mako (about
    9 MiB) load there and go with it, instead of staying for good in the service's processes,
    which only ever read the schema's revision afterwards (store/migrate.py)."""
    if not sys.platform.startswith("linux") or threading.active_count() > 1:
        _check_database_or_exit(url)
        return
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the forked process (tests/cli/test_serve_startup.py)
        code = 1
        try:
            _check_database_or_exit(url)
            code = 0
        except SystemExit as stop:
            code = stop.code if isinstance(stop.code, int) else 1
        except BaseException:
            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    code = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    if code != 0:
        raise SystemExit(code if code > 0 else 1)


def _check_database_or_exit(url: str) -> None:
    try:
        asyncio.run(check_database(url))
    except DatabaseStartupError as error:
        cause = error.__cause__ or error
        log.debug("database_check_failed", exc_info=(type(cause), cause, cause.__traceback__))
        print(str(error), file=sys.stderr)
        raise SystemExit(DATABASE_EXIT_CODE) from None


class QuietStartupFailure:
    """ASGI middleware: when the lifespan fails with `DatabaseStartupError`, uvicorn is told the
    one line instead of Starlette's formatted traceback (kept at debug level)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return
        held: list[Message] = []

        async def hold_startup_failure(message: Message) -> None:
            if message["type"] == "lifespan.startup.failed":
                held.append(message)  # sent below, once we know what failed
                return
            await send(message)

        try:
            await self.app(scope, receive, hold_startup_failure)
        except DatabaseStartupError as error:
            if held:
                cause = error.__cause__ or error
                log.debug(
                    "database_startup_failed", exc_info=(type(cause), cause, cause.__traceback__)
                )
                await send({"type": "lifespan.startup.failed", "message": str(error)})
            raise
        except BaseException:
            for message in held:
                await send(message)
            raise
        for message in held:  # pragma: no cover - Starlette raises after a failed startup
            await send(message)
