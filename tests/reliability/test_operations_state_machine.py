"""Issue 13's invariants under random operation requests, at CI size (see `operations_model.py`).

A hypothesis state machine (seeded, reproducible, no shrinking) sends create, start, stop and
delete, alone, in concurrent bursts on one instance and as stop-then-delete on several instances
in parallel, to a real service process and the simulator on 127.0.0.1; after each example it
waits for quiescence and checks that every 202 took effect or is recorded as superseded/refused
with a reason, that Novita instances and rows own each other one to one, and that every terminal
change has exactly one webhook event. `bench/reliability.py --only operations` runs it at
>= 500 steps. Reproduce a failure: the same seed gives the same steps (listed in the message).
"""

from __future__ import annotations

import asyncio
import sys

import pytest

from tests.reliability import scenarios
from tests.reliability.operations_model import OperationsReport, summary

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

STEPS, STEP_COUNT, SEED = 80, 15, 21  # ~8 examples: ~25 s on 2 cores


def _assert_held(report: OperationsReport) -> None:
    print(summary(report), file=sys.stderr)
    assert report.steps >= STEPS
    assert report.accepted > 0, "some requests were accepted"
    assert not report.problems(), summary(report) + "\n" + "\n".join(report.problems()[:60])
    assert report.operations_log, "the service keeps an operations history"


async def test_random_operations_keep_every_promise_sqlite(simulator, tmp_path):
    report = await asyncio.to_thread(
        scenarios.operations, simulator, tmp_path, STEPS, step_count=STEP_COUNT, seed=SEED
    )
    _assert_held(report)


@pytest.mark.postgres
async def test_random_operations_keep_every_promise_postgresql(simulator, tmp_path, postgres_url):
    report = await asyncio.to_thread(
        scenarios.operations,
        simulator,
        tmp_path,
        STEPS,
        database_url=postgres_url,
        database="postgresql",
        step_count=STEP_COUNT,
        seed=SEED,
    )
    _assert_held(report)
