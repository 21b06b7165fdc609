"""cli/batch_scheduling.py: a process put under SCHED_BATCH keeps its nice value (its share)."""

from __future__ import annotations

import multiprocessing
import os
import sys

import pytest

from novita_manager.cli.batch_scheduling import SPARE_NICE, run_as_batch_work, run_as_spare_work


def _report(queue: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    nice = os.nice(0)
    queue.put((run_as_batch_work(), os.sched_getscheduler(0), os.nice(0) - nice))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="SCHED_BATCH is Linux's")
def test_a_process_becomes_batch_work_with_its_nice_value_kept() -> None:
    context = multiprocessing.get_context("spawn")  # not this test process: it stays as it is
    queue = context.Queue()
    child = context.Process(target=_report, args=(queue,))
    child.start()
    done, policy, nice_change = queue.get(timeout=60)
    child.join(30)
    assert done is True
    assert policy == os.SCHED_BATCH
    assert nice_change == 0
    assert os.sched_getscheduler(0) == os.SCHED_OTHER


def _report_spare(queue: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    nice = os.nice(0)
    queue.put((run_as_spare_work(), os.nice(0) - nice))


def test_a_spare_process_gets_a_smaller_share() -> None:
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    child = context.Process(target=_report_spare, args=(queue,))
    child.start()
    done, nice_change = queue.get(timeout=60)
    child.join(30)
    assert done is True
    assert nice_change == SPARE_NICE
