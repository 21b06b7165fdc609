"""The cyclic garbage collector's thresholds in the service's processes.

CPython runs a collection of its youngest generation every 700 net container allocations. The
service allocates short-lived containers by the thousand per request and per pipeline step (rows,
dicts, ORM states, parsed replies) and reference counting frees nearly all of them, so most of
those collections find nothing to free. With 1,000 instances reaching running together
(`bench.burst`), the collector ran about 25 times a second and took 0.32 s of the pipeline
process's 3.9 s of CPU (measured with `gc.callbacks`); with the youngest threshold at 10,000 it
took 0.03 s. Reference cycles are still collected, a little later: what that holds back is the
garbage among 10,000 allocations at most. `serve` also freezes what start-up built
(cli/pipeline_worker.py), so the oldest generation's full collections stay small.

`release_free_memory` is for memory, not the collector: the status sync calls it after each run
(docs/design.md "Memory").
"""

from __future__ import annotations

import ctypes
import gc
import sys
from collections.abc import Callable

THRESHOLDS = (10_000, 20, 20)  # CPython's defaults: (700, 10, 10)


def tune_collector() -> None:
    """Set `THRESHOLDS` for this process (a forked child keeps them; a spawned one calls this)."""
    gc.set_threshold(*THRESHOLDS)


def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's `malloc_trim`, or None where there is none (another C library or system)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        function: Callable[[int], int] = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return None
    return function


_MALLOC_TRIM = _malloc_trim()


def release_free_memory() -> bool:
    """Give the free pages of the C heap back to the system (glibc's `malloc_trim`), after a
    peak of short-lived allocations larger than 512 bytes (those are not Python's small-object
    arenas but the C heap's, whose free pages in its middle stay resident otherwise). Costs
    about a millisecond on the pipeline process's heap. Whether it could run (glibc)."""
    if _MALLOC_TRIM is None:
        return False
    _MALLOC_TRIM(0)
    return True
