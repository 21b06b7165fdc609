"""`novita-manager serve` with a database it cannot open: one line, exit 4, no traceback.

Each case runs the real command as a user would; the traceback shows only with LOG_LEVEL=debug.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from novita_manager.cli.exit_codes import ServeExitCode
from tests.fixtures.postgres import PostgresServer
from tests.fixtures.service import ServiceProcess, free_port
from tests.fixtures.waiting import wait_for

NOWHERE = "http://127.0.0.1:{port}/gpu-instance/openapi"  # no Novita needed: it never gets there


def serve(
    cwd: Path, database_url: str, *, log_level: str = "info", script: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "NOVITA_API_BASE_URL": NOWHERE.format(port=free_port()),
        "HOST": "127.0.0.1",
        "PORT": str(free_port()),
        "LOG_LEVEL": log_level,
        "LOG_FORMAT": "json",
    }
    command = ["-c", script] if script else ["-m", "novita_manager", "serve"]
    return subprocess.run(
        [sys.executable, *command],
        cwd=cwd,  # away from the repository's .env
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )


def assert_one_line(done: subprocess.CompletedProcess[str], *expected: str) -> str:
    assert done.returncode == int(ServeExitCode.DATABASE) == 4, done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("Cannot open the database ")
    for text in expected:
        assert text in lines[0]
    return lines[0]


def unwritable_folder(tmp_path: Path) -> Path:
    """A folder the service cannot write: chmod 555, or a sysfs folder when running as root."""
    if os.geteuid() == 0:
        return Path("/sys")  # root writes anywhere but there
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    return folder


def bad_urls(tmp_path: Path) -> dict[str, tuple[str, list[str]]]:
    corrupt = tmp_path / "corrupt.db"
    corrupt.write_bytes(os.urandom(8192))
    (tmp_path / "folder.db").mkdir()
    folder = unwritable_folder(tmp_path)
    return {
        "corrupt": (
            f"sqlite+aiosqlite:///{corrupt}",
            [f"{corrupt} is not a valid SQLite database", "Restore it from a backup"],
        ),
        "directory": (
            f"sqlite+aiosqlite:///{tmp_path}/folder.db",
            [f"{tmp_path}/folder.db is a directory", "Set DATABASE_URL to a file path"],
        ),
        "unwritable": (
            f"sqlite+aiosqlite:///{folder}/novita.db",
            ["permission denied on", f"Make the folder {folder} writable"],
        ),
        "memory": (
            "sqlite+aiosqlite:///:memory:",
            ["SQLite needs a file", "Set DATABASE_URL to a file path"],
        ),
        "unreachable-postgres": (
            "postgresql+asyncpg://u:pa55word@127.0.0.1:1/x",
            [
                "postgresql+asyncpg://u:***@127.0.0.1:1/x",
                "cannot reach PostgreSQL at 127.0.0.1:1",
                "Start PostgreSQL",
            ],
        ),
    }


CASES = ["corrupt", "directory", "unwritable", "memory", "unreachable-postgres"]


@pytest.mark.parametrize("case", CASES)
def test_a_bad_database_is_one_line_and_exit_4(tmp_path: Path, case: str) -> None:
    url, expected = bad_urls(tmp_path)[case]
    line = assert_one_line(serve(tmp_path, url), *expected)
    assert "pa55word" not in line


def test_the_traceback_shows_at_debug_level(tmp_path: Path) -> None:
    url, expected = bad_urls(tmp_path)["corrupt"]
    done = serve(tmp_path, url, log_level="debug")
    assert done.returncode == 4
    assert "Traceback" in done.stderr
    assert "file is not a database" in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("Cannot open the database ")
    assert expected[0] in last


def test_a_file_held_by_a_running_service(
    tmp_path: Path, make_service_process: Callable[..., ServiceProcess]
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/shared.db"
    first = make_service_process(NOWHERE.format(port=free_port()), url).start()
    assert first.process is not None
    # The file's guard is held by the process that runs the pipelines: serve's child.
    children = Path(f"/proc/{first.process.pid}/task/{first.process.pid}/children")
    worker = wait_for(lambda: children.read_text().split(), what="the pipeline worker")[0]
    lock = tmp_path / "shared.db.lock"
    wait_for(lambda: lock.read_text().strip() == worker, what="the worker holding the file")
    done = serve(tmp_path, url)
    assert_one_line(
        done,
        f"another novita-manager process is using {tmp_path}/shared.db (pid {worker})",
        "stop it or use PostgreSQL",
    )
    assert first.process.poll() is None  # the running one is untouched


def test_wrong_postgres_role_and_database(tmp_path: Path, postgres_server: PostgresServer) -> None:
    port = postgres_server.port
    done = serve(tmp_path, f"postgresql+asyncpg://nobody_here:pa55word@127.0.0.1:{port}/postgres")
    assert_one_line(done, "refused the login of user 'nobody_here'", "Check the user name")
    done = serve(tmp_path, f"postgresql+asyncpg://postgres@127.0.0.1:{port}/no_such_db")
    assert_one_line(done, "database 'no_such_db' does not exist", "createdb no_such_db")


RACE = """
import uvicorn
from novita_manager.app import create_app
from novita_manager.config import load_settings
from novita_manager.logging import configure_logging
settings = load_settings()
configure_logging(settings.log_level, settings.log_format)
uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_config=None)
"""


def test_a_database_broken_after_the_check_fails_the_start_in_one_line(tmp_path: Path) -> None:
    """The lifespan alone (as if the file broke between `serve`'s check and the start)."""
    url, expected = bad_urls(tmp_path)["corrupt"]
    done = serve(tmp_path, url, script=RACE)
    assert done.returncode == int(ServeExitCode.SERVER_START) == 3
    assert "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if '"level": "error"' in line]
    assert len(errors) == 2, done.stderr  # the problem, then uvicorn's "startup failed"
    assert expected[0] in errors[0]
