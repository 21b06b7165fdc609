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
"""

from __future__ import annotations

import gc

THRESHOLDS = (10_000, 20, 20)  # CPython's defaults: (700, 10, 10)


def tune_collector() -> None:
    """Set `THRESHOLDS` for this process (a forked child keeps them; a spawned one calls this)."""
    gc.set_threshold(*THRESHOLDS)
