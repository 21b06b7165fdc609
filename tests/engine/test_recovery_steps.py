"""The spot-life steps (engine/provisioning/recover.py) one at a time, on a real database and
the simulator over HTTP: each test runs one step on a claimed row and reads back the row, the
history and the outbox."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update

from novita_manager.engine.provisioning.create import find_earlier_create
from novita_manager.engine.provisioning.recover import note_reclaim, reclaimed, retire
from novita_manager.store.models import Instance
from novita_manager.store.types import utcnow
from tests.engine.steps import (
    Steps,
    claim,
    create_upstream,
    deliveries,
    history,
    insert_instance,
    load,
    upstream,
)
from tests.fixtures.waiting import wait_until


async def running_row(steps: Steps, **columns: object) -> tuple[str, str]:
    """A managed row running on a simulator instance that carries its marker."""
    instance_id = await insert_instance(steps.db)
    novita_id = create_upstream(steps.simulator, instance_id)

    async def running() -> bool:
        return upstream(steps.simulator)[novita_id]["status"] == "running"

    await wait_until(running, timeout=15, what="the simulator's instance running")
    async with steps.db.session() as session, session.begin():
        await session.execute(
            update(Instance)
            .where(Instance.id == instance_id)
            .values(
                status="running",
                operation=None,
                novita_instance_id=novita_id,
                create_state="done",
                next_attempt_at=None,
                **columns,
            )
        )
    return instance_id, novita_id


def observation(status: str, spot: str, at: str | None) -> dict[str, object]:
    return {"status": status, "spotStatus": spot, "spotReclaimTime": at, "portMappings": []}


async def test_a_notice_is_noted_once_with_the_reclaim_time(steps: Steps) -> None:
    at = (utcnow() + timedelta(seconds=30)).replace(microsecond=0)
    instance_id, _ = await running_row(
        steps, observation=observation("running", "notified", at.isoformat())
    )
    lease, row = await claim(steps.db, instance_id)
    await note_reclaim(steps.ctx, lease, row)
    after = await load(steps.db, instance_id)
    assert (after.status, after.spot_status, after.reclaim_at) == ("running", "notified", at)
    [hook] = await deliveries(steps.db, instance_id)
    assert hook.event_type == "instance.reclaiming"
    assert hook.payload["data"]["reclaimAt"] == at.isoformat().replace("+00:00", "Z")
    assert "spot reclaim announced" in ((await history(steps.db, instance_id))[-1].reason or "")
    assert steps.wakes.outbox == 1


async def test_a_reclaim_with_policy_none_rests_stopped_after_both_warnings(
    steps: Steps,
) -> None:
    instance_id, _ = await running_row(
        steps, observation=observation("exited", "terminated", utcnow().isoformat())
    )
    lease, row = await claim(steps.db, instance_id)
    await reclaimed(steps.ctx, lease, row)
    after = await load(steps.db, instance_id)
    assert (after.status, after.recoveries, after.spot_status) == ("stopped", 0, "terminated")
    types = [d.event_type for d in await deliveries(steps.db, instance_id)]
    assert types == ["instance.reclaiming", "instance.reclaimed", "instance.stopped"]


async def test_a_recreate_recovery_then_retire_deletes_the_reclaimed_instance(
    steps: Steps,
) -> None:
    instance_id, novita_id = await running_row(
        steps,
        on_reclaim="recreate",
        max_recoveries=2,
        observation=observation("exited", "terminated", utcnow().isoformat()),
    )
    lease, row = await claim(steps.db, instance_id)
    await reclaimed(steps.ctx, lease, row)
    after = await load(steps.db, instance_id)
    assert (after.status, after.operation, after.recovery, after.recoveries) == (
        "creating",
        "create",
        "recreate",
        1,
    )
    assert after.replaces_novita_id == novita_id
    assert after.novita_instance_id == novita_id  # retired by the next step, not here

    lease, row = await claim(steps.db, instance_id)
    await retire(steps.ctx, lease, row)
    retired = await load(steps.db, instance_id)
    assert (retired.novita_instance_id, retired.create_state) == (None, "pending")
    assert retired.replaces_novita_id == novita_id
    assert upstream(steps.simulator)[novita_id]["status"] in ("toRemove", "removing", "removed")
    # the marker search after an unknown create never adopts the deleted instance back
    async with steps.db.session() as session, session.begin():
        await session.execute(
            update(Instance).where(Instance.id == instance_id).values(create_state="unknown")
        )
    lease, row = await claim(steps.db, instance_id)
    assert await find_earlier_create(steps.ctx, lease, row)
    assert (await load(steps.db, instance_id)).novita_instance_id is None

    lease, row = await claim(steps.db, instance_id)
    row.novita_instance_id = novita_id  # a crash before the retire was recorded: again
    await retire(steps.ctx, lease, row)
    assert (await load(steps.db, instance_id)).novita_instance_id is None


async def test_max_recoveries_reached_fails_the_instance(steps: Steps) -> None:
    instance_id, _ = await running_row(
        steps,
        on_reclaim="migrate",
        max_recoveries=1,
        recoveries=1,
        reclaim_at=utcnow(),
        observation=observation("exited", "terminated", utcnow().isoformat()),
    )
    lease, row = await claim(steps.db, instance_id)
    await reclaimed(steps.ctx, lease, row)
    after = await load(steps.db, instance_id)
    assert after.status == "failed"
    assert "maxRecoveries 1" in (after.failure_reason or "")
    types = [d.event_type for d in await deliveries(steps.db, instance_id)]
    assert types == ["instance.reclaimed", "instance.failed"]  # the notice was already sent


async def test_a_second_recovery_soon_after_the_first_backs_off(steps: Steps) -> None:
    steps.ctx.settings.recovery_backoff = 60.0
    last = utcnow() - timedelta(seconds=10)
    instance_id, _ = await running_row(
        steps,
        on_reclaim="restart",
        recoveries=1,
        last_recovery_at=last,
        observation=observation("exited", "terminated", utcnow().isoformat()),
    )
    lease, row = await claim(steps.db, instance_id)
    await reclaimed(steps.ctx, lease, row)
    after = await load(steps.db, instance_id)
    start = last + timedelta(seconds=60)
    assert (after.status, after.operation, after.recoveries) == ("starting", "start", 2)
    assert (after.operation_started_at, after.next_attempt_at) == (start, start)
    assert "(backoff)" in ((await history(steps.db, instance_id))[-1].reason or "")
