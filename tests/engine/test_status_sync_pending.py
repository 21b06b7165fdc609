"""The status sync leaves alone the rows whose provisioning step is due or under way, and waits
for the provisioning backlog before a run (a burst of instances reaching running together)."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

from sqlalchemy import update

from novita_manager.engine.status_sync import StatusSync
from novita_manager.store.models import Instance
from novita_manager.store.types import utcnow
from tests.engine.steps import Steps, load, managed_running


async def _created(steps: Steps, count: int) -> list[str]:
    """Rows whose create went through and whose step waits (not due) for the instance to run;
    upstream they are running."""
    return list(
        await managed_running(steps, count, "pending", create_state="done", next_attempt_at=None)
    )


async def test_a_row_due_or_leased_is_only_confirmed_not_rewritten(steps: Steps) -> None:
    """The first run finds the instances running and wakes their steps. A run while those steps
    are due (or leased, under way) sees nothing new: it confirms the rows (`last_synced_at`) and
    leaves their observation, `observed_at` and due time alone, so no step under way is made
    to run once more for the sync's own rewrite."""
    due, leased = await _created(steps, 2)
    sync = StatusSync(db=steps.db, client=steps.ctx.client, interval=0.2, owner="test")
    first = await sync.run_once()
    assert first.changed == 2
    woken = {row_id: await load(steps.db, row_id) for row_id in (due, leased)}
    for row in woken.values():
        assert row.observation is not None
        assert row.observation["status"] == "running"
        assert row.next_attempt_at is not None
        assert row.next_attempt_at <= utcnow()
    expires = utcnow() + timedelta(seconds=30)
    async with steps.db.session() as session, session.begin():  # a worker claimed this one
        await session.execute(
            update(Instance)
            .where(Instance.id == leased)
            .values(lock_owner="worker", lock_token="token", lock_expires_at=expires)
        )

    second = await sync.run_once()
    assert second.changed == 0
    for row_id, before in woken.items():
        after = await load(steps.db, row_id)
        assert after.observation == before.observation
        assert after.observed_at == before.observed_at  # no news for the step under way
        assert after.next_attempt_at == before.next_attempt_at
        assert after.last_synced_at is not None
        assert before.last_synced_at is not None
        assert after.last_synced_at > before.last_synced_at  # seen again: not stale

    # Once a row is neither due nor leased, a run wakes it again (its step decided to wait).
    async with steps.db.session() as session, session.begin():
        await session.execute(
            update(Instance)
            .where(Instance.id.in_([due, leased]))
            .values(next_attempt_at=None, lock_owner=None, lock_token=None, lock_expires_at=None)
        )
    await sync.run_once()
    for row_id in (due, leased):
        row = await load(steps.db, row_id)
        assert row.next_attempt_at is not None
        assert row.next_attempt_at <= utcnow()
        assert row.observed_at is not None
        before_at = woken[row_id].observed_at
        assert before_at is not None
        assert row.observed_at > before_at


async def test_a_step_waiting_for_news_after_its_call_gets_a_fresh_observation(
    steps: Steps,
) -> None:
    """A due row whose step sent a stop after the stored observation was taken: the listing
    shows the same, but only an observation taken after the call tells the step anything, so the
    sync writes it (a fresh `observed_at`) and wakes the row. (Leaving such a row alone because
    its step was due kept it stopping for good in the operations state machine test: requests
    waiting behind the stop kept the row due at every run.)"""
    (row_id,) = await _created(steps, 1)
    sync = StatusSync(db=steps.db, client=steps.ctx.client, interval=0.2, owner="test")
    await sync.run_once()
    before = await load(steps.db, row_id)
    assert before.observed_at is not None
    issued = utcnow()
    async with steps.db.session() as session, session.begin():
        await session.execute(
            update(Instance)
            .where(Instance.id == row_id)
            .values(
                status="stopping",
                operation="stop",
                operation_started_at=issued,
                operation_issued=True,
                operation_issued_at=issued,
                next_attempt_at=issued,  # due: requests queued behind the stop keep it so
            )
        )
    report = await sync.run_once()
    assert report.changed == 0  # the listing says what it said
    after = await load(steps.db, row_id)
    assert after.observed_at is not None
    assert after.observed_at > issued  # news after the call, for the step
    assert after.next_attempt_at is not None
    assert after.next_attempt_at <= utcnow()


async def test_a_run_waits_for_the_provisioning_backlog_at_most_its_cap(steps: Steps) -> None:
    """While the pipeline has a backlog the sync's next run waits, for `max_deferral` at most;
    once the backlog is gone it runs at once."""
    await _created(steps, 1)
    sync = StatusSync(db=steps.db, client=steps.ctx.client, interval=0.2, owner="test")
    backlog = True
    sync.busy = lambda: backlog
    sync.max_deferral = 1.5
    started = time.monotonic()
    await sync.start()
    try:
        await asyncio.sleep(0.8)
        assert sync.health.runs == 0  # waiting for the backlog
        while sync.health.runs == 0:
            await asyncio.sleep(0.02)
        waited = time.monotonic() - started
        assert 1.5 <= waited < 3.0  # the cap: a backlog that lasts does not stop the sync
        runs = sync.health.runs
        backlog = False
        deadline = time.monotonic() + 2.0
        while sync.health.runs < runs + 2 and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        assert sync.health.runs >= runs + 2  # no backlog: every interval again
        assert time.monotonic() - started - waited < 1.5
    finally:
        await sync.stop()
