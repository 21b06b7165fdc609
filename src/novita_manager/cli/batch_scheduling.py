"""The pipelines' processes are batch work for the kernel's scheduler (Linux `SCHED_BATCH`).

`serve` answers HTTP in one process and runs the pipelines, the status sync and the webhook
deliveries in another (cli/pipeline_worker.py); `serve --role worker` is the same work alone.
An answer is waited for by a client; a pipeline step can start a few milliseconds later without
anyone noticing. On a machine whose cores are all busy, a pipeline process that woke up (its
poll timer, a reply from Novita) used to preempt the API process in the middle of a read.
`SCHED_BATCH` tells the scheduler that a process is CPU-bound and non-interactive: its wake-ups
no longer preempt the others, while its share of the CPU (its nice value) stays what it was,
so the lifecycles still get their share when reads overload the API process
(docs/operations.md "Overload"). No privilege is needed; elsewhere than Linux nothing changes.
"""

from __future__ import annotations

import os

from novita_manager.logging import get_logger

log = get_logger(__name__)


def run_as_batch_work() -> bool:
    """Put this process under `SCHED_BATCH`; False when the platform has no such policy."""
    policy = getattr(os, "SCHED_BATCH", None)
    if policy is None or not hasattr(os, "sched_setscheduler"):
        return False
    try:
        os.sched_setscheduler(0, policy, os.sched_param(0))
    except OSError as error:  # a container's seccomp profile may refuse it: run as before
        log.info("batch_scheduling_unavailable", error=str(error))
        return False
    return True


# How much less of a contended core a spare background process gets (nice +10: about a tenth of
# a nice-0 process's share). See `run_as_spare_work`.
SPARE_NICE = 10


def run_as_spare_work() -> bool:
    """Lower this process's share of a contended CPU (`SPARE_NICE`); False when refused.

    For `serve`'s background processes after the first (PIPELINE_PROCESSES): they are there to
    take the cores the machine has left, when 1,000 instances reach running at once and the
    first one's core is full. With a full share, on a 2-core machine shared with PostgreSQL and
    the load, reads during 1,000 lifecycles had a p99 over 20 ms in 4 of 9 runs (1 of 7 with one
    process); at nice +10, three runs at a calmer moment read 7-12 ms (one process 8-12 ms),
    and the burst kept its gain (docs/design.md, twelfth round)."""
    try:
        os.nice(SPARE_NICE)
    except OSError as error:
        log.info("spare_priority_unavailable", error=str(error))
        return False
    return True
