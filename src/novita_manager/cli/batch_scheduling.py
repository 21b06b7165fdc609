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
