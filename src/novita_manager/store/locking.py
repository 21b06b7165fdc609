"""The single-process guard of SQLite.

SQLite allows one service process: pipelines on SQLite serialise claims with a process-local lock,
so a second process on the same file would claim the same rows. An exclusive `flock` on a sidecar
file (`<db>.lock`) refuses that second process. The kernel drops a flock when its process dies, so
even `kill -9` never leaves a stale lock behind.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path


class DatabaseInUse(Exception):
    """Another process (or another open `Database` in this one) holds the SQLite file."""


class ProcessLock:
    """An exclusive, non-blocking flock held for the lifetime of an open SQLite database."""

    def __init__(self, database_path: Path) -> None:
        self.database_path = database_path
        self.path = database_path.with_name(database_path.name + ".lock")
        self._fd: int | None = None

    def acquire(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_pid(fd)
            os.close(fd)
            raise DatabaseInUse(_message(self.database_path, holder)) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        os.ftruncate(fd, 0)
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode().strip()
        return int(text) if text else None
    except (OSError, ValueError):
        return None


def _message(path: Path, pid: int | None) -> str:
    if pid == os.getpid():
        who = f"this process (pid {pid}) already has {path} open"
        return f"{who}; SQLite allows one open database per file: close it first"
    holder = f"pid {pid}" if pid is not None else "pid unknown"
    return (
        f"another novita-manager process is using {path} ({holder}); "
        "SQLite allows one process: stop it or use PostgreSQL"
    )
