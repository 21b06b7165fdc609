"""SQLite allows one process: a second one is refused with a clear message, never corrupts work."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from novita_manager.store.db import Database, DatabaseInUse

ROOT = Path(__file__).resolve().parents[2]


def open_in_subprocess(url: str, hold: float = 0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tests.store.open_sqlite", url, str(hold)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_second_process_is_refused_with_a_clear_message(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/data/x.db"
    db = await Database.open(url)
    try:
        done = open_in_subprocess(url)
        assert done.returncode == 3, done.stderr
        assert "another novita-manager process is using" in done.stdout
        assert f"{tmp_path}/data/x.db (pid {os.getpid()})" in done.stdout
        assert "SQLite allows one process: stop it or use PostgreSQL" in done.stdout
    finally:
        await db.close()
    assert open_in_subprocess(url).stdout.startswith("OPENED")


async def test_second_open_in_the_same_process_is_refused(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/x.db"
    db = await Database.open(url)
    try:
        with pytest.raises(DatabaseInUse, match="already has"):
            await Database.open(url)
    finally:
        await db.close()


async def test_a_killed_process_leaves_no_stale_lock(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/x.db"
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.store.open_sqlite", url, "60"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().startswith("OPENED")
        with pytest.raises(DatabaseInUse, match=f"pid {child.pid}"):
            await Database.open(url)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    db = await Database.open(url)
    await db.close()
