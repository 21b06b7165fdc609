"""SQLite WAL checkpoints on a thread of their own, never inside a commit on the event loop.

The service's statements run on the event loop's thread (`sqlite_inline`). With SQLite's
automatic checkpoints, the commit that filled the WAL past 1,000 pages copied them into the
database file and synced it, inline: measured on this project's 2-core machine, 18-27 ms per
checkpoint with nothing else running, and commits of the API process holding its loop for up to
127 ms during the lifecycle benchmark (py-spy at 1 kHz), a read's p99 right there. So the
service's writing connections turn automatic checkpoints off (`wal_autocheckpoint=0`,
store/db.py) and each process that writes runs this thread: every `interval` seconds, a PASSIVE
checkpoint on a connection of its own. Python's sqlite3 releases the GIL while SQLite works, so
the copy and the sync no longer delay the loop. A PASSIVE checkpoint never waits for readers or
writers (what they still need is left for the next one), and two processes checkpointing at
once is harmless (one finds the other's lock and skips its turn). After a complete checkpoint
the next writer starts the WAL over from its beginning, as with automatic checkpoints, so the
file stays as small as before (it grows only by what is written within one interval).
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from pathlib import Path

from novita_manager.logging import get_logger

CHECKPOINT_INTERVAL = 0.5  # seconds between two checkpoints
log = get_logger(__name__)


class WalCheckpointer:
    """A daemon thread checkpointing the WAL of the SQLite file at `path` (`start`, `stop`)."""

    def __init__(self, path: Path, interval: float = CHECKPOINT_INTERVAL) -> None:
        self.path = path
        self.interval = interval
        self.checkpoints = 0  # completed checkpoint calls (for tests and curiosity)
        self.frames = 0  # WAL frames copied into the database file so far
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sqlite-checkpoint", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop after the checkpoint under way, if any (a last one is not needed: SQLite
        checkpoints the WAL when the last connection to the file closes)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)

    def _run(self) -> None:
        try:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as error:  # the database opened a moment ago: unlikely
            log.warning("wal_checkpoint_unavailable", error=str(error))
            return
        with contextlib.closing(conn):
            conn.execute("PRAGMA busy_timeout=0")  # never wait: the next turn comes soon
            while not self._stop.wait(self.interval):
                self.checkpoint(conn)

    def checkpoint(self, conn: sqlite3.Connection) -> None:
        try:
            row = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        except sqlite3.Error as error:  # busy or locked: the next turn will do it
            log.debug("wal_checkpoint_skipped", error=str(error))
            return
        self.checkpoints += 1
        if row is not None and row[2] > 0:
            self.frames += int(row[2])
