"""The limits task, step by step against a real database and the simulator: a due limit appends
one request with its cause, once (also after a restart of the task), never past a user's
request; the warning is written once; idle is read from Novita's GPU utilisation."""

from __future__ import annotations

import time
from datetime import timedelta

from sqlalchemy import select

from novita_manager.domain.statuses import Operation, Status
from novita_manager.engine.scheduled.limits import LimitOptions, LimitsTask
from novita_manager.store.models import OperationRequest
from novita_manager.store.types import utcnow
from tests.engine.steps import (
    Steps,
    add_request,
    create_upstream,
    deliveries,
    insert_instance,
    load,
)

OPTIONS = LimitOptions(interval=0.2, warning_lead=60, idle_threshold=5.0)


def task(steps: Steps) -> LimitsTask:
    return LimitsTask(steps.db, steps.ctx.client, OPTIONS)


async def causes(steps: Steps, instance_id: str) -> list[tuple[int, str, str | None]]:
    async with steps.db.read_session() as session:
        rows = await session.execute(
            select(OperationRequest.seq, OperationRequest.operation, OperationRequest.cause)
            .where(OperationRequest.instance_id == instance_id)
            .order_by(OperationRequest.seq)
        )
    return [tuple(row) for row in rows.all()]  # type: ignore[misc]


async def running(steps: Steps, **columns: object) -> str:
    now = utcnow()
    return await insert_instance(
        steps.db,
        status=Status.RUNNING.value,
        operation=None,
        novita_instance_id=columns.pop("novita_instance_id", f"n{now.timestamp()}"),
        ready_at=now - timedelta(seconds=30),
        next_attempt_at=None,
        **columns,
    )


async def test_a_due_limit_fires_once_even_after_a_restart(steps: Steps) -> None:
    due = await running(steps, auto_stop_after=10.0)
    later = await running(steps, auto_stop_after=3600.0)
    assert await task(steps).run_once() == 1
    assert await causes(steps, due) == [(1, "stop", "auto-stop")]
    assert await causes(steps, later) == []
    row = await load(steps.db, due)
    assert (row.request_seq, row.limit_fired is not None) == (1, True)
    assert await task(steps).run_once() == 0  # a new task, as after a restart: fired already
    assert await causes(steps, due) == [(1, "stop", "auto-stop")]


async def test_a_users_open_request_wins(steps: Steps) -> None:
    stopping = await running(steps, auto_stop_after=10.0, request_seq=1)
    await add_request(steps.db, stopping, 1, Operation.STOP)
    deleting = await running(steps, auto_delete_after=1.0, request_seq=1)
    await add_request(steps.db, deleting, 1, Operation.DELETE)
    assert await task(steps).run_once() == 0
    assert await causes(steps, stopping) == [(1, "stop", None)]
    assert await causes(steps, deleting) == [(1, "delete", None)]


async def test_the_warning_is_written_once(steps: Steps) -> None:
    soon = await running(steps, auto_stop_after=60.0)  # due in 30 s, warned 60 s ahead
    for _ in range(2):
        assert await task(steps).run_once() == 0
    [warning] = await deliveries(steps.db, soon)
    assert warning.event_type == "instance.expiring"
    assert (warning.payload["data"]["action"], warning.payload["data"]["reason"]) == (
        "stop",
        "auto-stop",
    )


async def test_idle_is_read_from_the_gpu_utilisation(steps: Steps) -> None:
    novita_id = create_upstream(steps.simulator, "idle-marker")
    busy = await running(steps, idle_stop_after=0.5, novita_instance_id=novita_id)
    time.sleep(0.6)  # the simulator's instance runs (time scale 0.01)
    limits = task(steps)
    assert await limits.run_once() == 0
    row = await load(steps.db, busy)
    assert (row.idle_since, row.gpu_utilization) == (None, 85.0)
    steps.simulator.control.set_utilization(novita_id, 0.0)
    assert await limits.run_once() == 0
    row = await load(steps.db, busy)
    assert row.idle_since is not None
    assert row.gpu_utilization == 0.0
    time.sleep(0.6)
    assert await limits.run_once() == 1
    assert await causes(steps, busy) == [(1, "stop", "idle")]
