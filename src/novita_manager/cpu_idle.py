"""Whether the machine has a core to spare right now (Linux's /proc/stat), for spare work.

A spare background process of `serve` (services/runtime.py, `spare`) claims rows only while the
machine's cores were partly idle since it last looked: it is there to use what nobody else
uses. Under read overload or a busy lifecycle run the cores are full, and a spare process at
nice +10 that had claimed rows then worked them at a tenth of a share while they waited (on
PostgreSQL, 100 lifecycles under overload took 1.8-1.9 s against 1.6-1.8 s with one process).
When 1,000 instances reach running at once the first process's core is full and a quarter of
the machine idle: then it works.
"""

from __future__ import annotations

import os
from pathlib import Path

PROC_STAT = Path("/proc/stat")


class IdleCores:
    """Idle cores (0 to the machine's count) between two calls of `__call__`."""

    def __init__(self, minimum: float, path: Path = PROC_STAT) -> None:
        self.minimum = minimum
        self.path = path
        self._last: tuple[int, int] | None = self._read()

    def _read(self) -> tuple[int, int] | None:
        """(idle, total) jiffies of all cores; None where there is no /proc/stat."""
        try:
            with self.path.open() as stat:
                fields = [int(value) for value in stat.readline().split()[1:]]
            idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
        except (OSError, ValueError, IndexError):  # no such file, or not the format we know
            return None
        return idle, sum(fields[:8])  # guest time is already in user and nice

    def idle(self) -> float | None:
        """Idle cores since the last call; None when unknown (no /proc/stat, no time passed)."""
        now = self._read()
        last, self._last = self._last, now
        if now is None or last is None or now[1] <= last[1]:
            return None
        return (now[0] - last[0]) / (now[1] - last[1]) * (os.cpu_count() or 1)

    def __call__(self) -> bool:
        """Whether at least `minimum` cores were idle since the last call (yes when unknown)."""
        idle = self.idle()
        return idle is None or idle >= self.minimum
