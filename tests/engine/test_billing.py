"""Recording billed periods (engine/billing.py) against SQLite and PostgreSQL: a period closed
twice (the sync and a step, or two replicas) is one row, and the row's totals are its sum."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from novita_manager.domain.costs import Period
from novita_manager.engine.billing import close_open, record_period
from novita_manager.store.db import Database
from novita_manager.store.models import BillingPeriod
from novita_manager.store.types import utcnow
from tests.engine.steps import insert_instance, load


async def periods(db: Database, instance_id: str) -> list[tuple[float, float]]:
    async with db.read_session() as session:
        rows = await session.execute(
            select(BillingPeriod.seconds, BillingPeriod.cost)
            .where(BillingPeriod.instance_id == instance_id)
            .order_by(BillingPeriod.started_at)
        )
    return [(seconds, cost) for seconds, cost in rows.all()]


async def test_a_period_recorded_twice_counts_once(db: Database) -> None:
    instance_id = await insert_instance(db)
    start = utcnow() - timedelta(hours=2)
    first = Period(start, start + timedelta(hours=1), 0.5)
    second = Period(start + timedelta(minutes=90), start + timedelta(minutes=120), 1.0)
    for period in (first, first, second, first):
        async with db.session() as session, session.begin():
            for statement in record_period(db.dialect, instance_id, period):
                await session.execute(statement)
    assert await periods(db, instance_id) == [(3600.0, 0.5), (1800.0, 0.5)]
    row = await load(db, instance_id)
    assert (row.billed_seconds, row.billed_cost) == (5400.0, 1.0)


async def test_an_open_period_closes_at_a_removal(db: Database) -> None:
    since = utcnow() - timedelta(minutes=30)
    observation = {"status": "running", "billedSince": since.isoformat(), "billedRate": 2.0}
    instance_id = await insert_instance(db, observation=observation)
    row = await load(db, instance_id)
    async with db.session() as session, session.begin():
        for statement in close_open(db.dialect, row, since + timedelta(minutes=30)):
            await session.execute(statement)
    assert await periods(db, instance_id) == [(1800.0, 1.0)]
    without = await load(db, await insert_instance(db, observation={"status": "exited"}))
    assert close_open(db.dialect, without, since) == []  # nothing open: nothing to record
