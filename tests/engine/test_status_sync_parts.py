"""The status sync evaluates its rows in parts (bounded memory per run) and keeps only a settle key
of a listed instance whose row is skipped: every row is still recorded, and a row seen exactly as
at the last run is still skipped while a changed one is evaluated."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import update

from novita_manager.engine.status_sync import StatusSync
from novita_manager.engine.status_sync import sync as sync_module
from novita_manager.store.models import Instance
from tests.engine.steps import (
    Steps,
    create_upstream,
    insert_instance,
    load,
    managed_running,
)

ROWS = 5


async def test_rows_are_evaluated_in_parts_and_settled_rows_skipped(
    steps: Steps, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sync_module, "EVALUATE_PART", 2)  # 5 rows: parts of 2, 2 and 1
    rows = await managed_running(
        steps, ROWS, "part", status="running", operation=None, operation_started_at=None,
        create_state="done", next_attempt_at=None,
    )  # fmt: skip
    sync = StatusSync(db=steps.db, client=steps.ctx.client, interval=0.2, owner="test")

    first = await sync.run_once()
    assert (first.rows, first.changed, first.skipped) == (ROWS, ROWS, 0)
    for row_id in rows:  # every part was written
        stored = await load(steps.db, row_id)
        assert stored.observation is not None
        assert stored.observation["status"] == "running"
        assert stored.observed_at is not None

    # The second run sees each row as the first one wrote it, unchanged upstream: evaluated
    # once more (its observation write moved the settle key), found quiet and settled.
    second = await sync.run_once()
    assert (second.changed, second.skipped) == (0, 0)
    third = await sync.run_once()
    assert (third.rows, third.changed, third.skipped) == (ROWS, 0, ROWS)

    failing_row, failing = next(iter(rows.items()))
    steps.simulator.control.fail(failing, state="error", message="disk full")
    fourth = await sync.run_once()
    assert (fourth.changed, fourth.skipped) == (1, ROWS - 1)  # only the changed row evaluated
    stored = await load(steps.db, failing_row)
    assert stored.observation is not None
    assert stored.observation["statusError"] == {"state": "error", "message": "disk full"}


async def test_rows_with_an_operation_under_way_settle_too(steps: Steps) -> None:
    """A row whose operation is under way gets a fresh `observed_at` from every run (it proves
    whether the operation takes in time); that write of the sync's own is no news, so such rows
    settle like rows at rest instead of being evaluated at every run. Here: creates sent, the
    instances still on their way up (slow simulated time), the step waiting."""
    steps.simulator.control.set_config(time_scale=100)  # a create takes over an hour
    rows: dict[str, str] = {}
    for index in range(ROWS):
        row_id = await insert_instance(steps.db, create_state="done", next_attempt_at=None)
        rows[row_id] = create_upstream(steps.simulator, row_id, name=f"op-{index}")
    for row_id, novita_id in rows.items():
        async with steps.db.session() as session, session.begin():
            await session.execute(
                update(Instance).where(Instance.id == row_id).values(novita_instance_id=novita_id)
            )
    sync = StatusSync(db=steps.db, client=steps.ctx.client, interval=0.2, owner="test")
    reports, seen_at = [], []
    for _ in range(4):
        reports.append(await sync.run_once())
        seen_at.append({(await load(steps.db, row_id)).observed_at for row_id in rows})
    assert [report.skipped for report in reports] == [0, 0, ROWS, ROWS]
    assert all(len(times) == 1 for times in seen_at)  # one run writes one time on all rows
    assert len(set().union(*seen_at)) == 4  # every run wrote it afresh, settled or not
    for row_id in rows:
        stored = await load(steps.db, row_id)
        assert (stored.status, stored.operation, stored.next_attempt_at) == (
            "creating",
            "create",
            None,
        )  # still waiting: nothing woke the step


@pytest.mark.parametrize(
    ("max_wait", "idle", "parts"),
    [(0.0, True, [2, 2, 1, 0]), (60.0, True, [5]), (0.0, False, [5])],
)
async def test_a_part_is_written_once_its_first_row_has_waited(
    steps: Steps,
    monkeypatch: pytest.MonkeyPatch,
    max_wait: float,
    idle: bool,
    parts: list[int],
) -> None:
    """While the provisioning pipeline is idle, listed changes wait at most PART_MAX_WAIT for
    their part, so the steps of a burst's first rows start while the listing goes on; within it,
    and while the pipeline works, rows still gather (pages of 2 here)."""
    monkeypatch.setattr(sync_module, "PAGE_SIZE", 2)
    monkeypatch.setattr(sync_module, "PART_MAX_WAIT", max_wait)
    await managed_running(
        steps, ROWS, "wait", status="running", operation=None, operation_started_at=None,
        create_state="done", next_attempt_at=None,
    )  # fmt: skip
    sync = StatusSync(db=steps.db, client=steps.ctx.client, interval=0.2, owner="test")
    sync.idle = lambda: idle
    written: list[int] = []
    record_part = sync._record_part

    async def counted(part: list[Any], *args: Any, **kwargs: Any) -> int:
        written.append(len(part))
        return await record_part(part, *args, **kwargs)

    monkeypatch.setattr(sync, "_record_part", counted)
    report = await sync.run_once()
    assert (report.pages, report.changed) == (3, ROWS)
    assert written == parts  # at 0 s, a part per page (and the run's closing one, empty)
