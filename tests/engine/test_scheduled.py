"""Scheduled tasks: the runner (one replica at a time per task, on request, failures counted),
the idempotency-key purge and the stray deletion, each against a real database file."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import select

from novita_manager.engine.scheduled import ScheduledRunner, ScheduledTask
from novita_manager.engine.scheduled.idempotency import (
    IDEMPOTENCY_TASK,
    idempotency_purge_task,
    purge_expired_idempotency_keys,
)
from novita_manager.engine.scheduled.strays import STRAYS_TASK, delete_strays, stray_deletion_task
from novita_manager.engine.status_sync.strays import Sighting, StraySightings
from novita_manager.metrics import Metrics
from novita_manager.store.db import Database
from novita_manager.store.models import IdempotencyKey
from novita_manager.store.types import utcnow
from tests.engine.steps import Steps, create_upstream, insert_instance, load, upstream
from tests.fixtures.waiting import wait_until


def counting_task(name: str, runs: list[str], who: str, interval: float = 0.1) -> ScheduledTask:
    async def run() -> int:
        runs.append(who)
        return 1

    return ScheduledTask(name, interval, run)


async def test_a_task_runs_in_one_replica_at_a_time(db: Database) -> None:
    runs: list[str] = []
    replicas = [
        ScheduledRunner(db=db, owner=who, tasks=[counting_task("tick", runs, who)])
        for who in ("replica-1", "replica-2")
    ]
    for runner in replicas:
        await runner.start()
    try:
        await wait_until(lambda: asyncio.sleep(0, len(runs) >= 3), what="three runs")
    finally:
        for runner in replicas:
            await runner.stop()
    assert len(set(runs)) == 1, runs  # the lease holder only


async def test_a_requested_task_runs_at_once_and_failures_are_counted(db: Database) -> None:
    calls: list[int] = []

    async def run() -> int:
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("boom")
        return 0

    metrics = Metrics()
    runner = ScheduledRunner(
        db=db, owner="r", tasks=[ScheduledTask("hourly", 3600, run)], metrics=metrics
    )
    await runner.start()
    try:
        await wait_until(lambda: asyncio.sleep(0, len(calls) == 1), what="the first run")
        runner.request("hourly")
        await wait_until(lambda: asyncio.sleep(0, len(calls) == 2), what="the requested run")
    finally:
        await runner.stop()
    health = runner.health["hourly"]
    assert (health.runs, health.failures, health.last_error) == (1, 1, "RuntimeError: boom")
    rendered = metrics.render().decode()
    assert 'novita_manager_scheduled_task_runs_total{outcome="ok",task="hourly"} 1.0' in rendered
    assert 'novita_manager_scheduled_task_runs_total{outcome="failed",task="hourly"} 1.0' in (
        rendered
    )


async def test_a_following_task_runs_only_while_its_holder_holds(db: Database) -> None:
    runs: list[str] = []
    holding = False

    async def run() -> int:
        runs.append("ran")
        return 0

    task = ScheduledTask("follower", 0.05, run, follows=lambda: holding)
    runner = ScheduledRunner(db=db, owner="r", tasks=[task])
    await runner.start()
    try:
        await asyncio.sleep(0.3)
        assert runs == []
        holding = True
        await wait_until(lambda: asyncio.sleep(0, bool(runs)), what="a run once held")
    finally:
        await runner.stop()


async def test_idempotency_keys_older_than_a_day_are_purged(db: Database) -> None:
    async with db.session() as session, session.begin():
        for key, age in (("old", timedelta(hours=25)), ("young", timedelta(hours=23))):
            session.add(
                IdempotencyKey(
                    key=key,
                    request_hash="h",
                    instance_id="i",
                    response_status=201,
                    response_body={},
                    created_at=utcnow() - age,
                )
            )
    assert await purge_expired_idempotency_keys(db) == 1
    runner = ScheduledRunner(db=db, owner="r", tasks=[idempotency_purge_task(db)])
    assert await runner.run_task(IDEMPOTENCY_TASK) == 0  # the task: nothing more to purge
    async with db.read_session() as reader:
        assert (await reader.scalars(select(IdempotencyKey.key))).all() == ["young"]


async def test_sighted_strays_are_deleted_and_their_owner_settled(steps: Steps) -> None:
    failed = await insert_instance(
        steps.db, status="failed", operation=None, create_state="unknown"
    )
    late_id = create_upstream(steps.simulator, failed)
    creating = await insert_instance(steps.db)
    adopted_id = create_upstream(steps.simulator, creating)
    sightings = StraySightings()
    now = utcnow()
    sightings.record([Sighting(late_id, failed, now)])
    task = stray_deletion_task(
        steps.db, steps.ctx.client, sightings, interval=0.2, follows=lambda: True
    )
    runner = ScheduledRunner(db=steps.db, owner="r", tasks=[task])
    assert await runner.run_task(STRAYS_TASK) == 1
    assert upstream(steps.simulator)[late_id]["removed"] or (
        upstream(steps.simulator)[late_id]["status"] in ("toRemove", "removing", "removed")
    )
    assert (await load(steps.db, failed)).create_state == "done"
    assert len(sightings) == 0
    # A sighting whose owner can adopt it (still creating) is never deleted.
    sightings.record([Sighting(adopted_id, creating, now)])
    assert await delete_strays(steps.db, steps.ctx.client, sightings) == 0
    assert upstream(steps.simulator)[adopted_id]["status"] not in ("toRemove", "removing")
