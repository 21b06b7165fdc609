"""Writing under a lease: `DueSooner` lets the UPDATE itself pick "due now" from the row."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select, update

from novita_manager.engine.leases import DueSooner, Lease, write_with_lease
from novita_manager.store.db import Database
from novita_manager.store.models import Instance
from novita_manager.store.types import utcnow
from tests.engine.steps import insert_instance


async def leased(db: Database, **columns: object) -> Lease:
    row_id = await insert_instance(db)
    lease = Lease(row_id, f"token-{row_id}", "me")
    async with db.session() as session, session.begin():
        await session.execute(
            update(Instance).where(Instance.id == row_id).values(lock_token=lease.token, **columns)
        )
    return lease


async def write_due(db: Database, lease: Lease, due: DueSooner) -> datetime | None:
    async with db.session() as session, session.begin():
        values = {"next_attempt_at": due, "attempts": 2}
        assert await write_with_lease(session, Instance, lease, values, release=True)
    async with db.session() as session:
        row = (
            await session.execute(select(Instance).where(Instance.id == lease.row_id))
        ).scalar_one()
        assert (row.attempts, row.lock_token) == (2, None)
        return row.next_attempt_at


async def test_the_later_time_when_no_condition_holds(db: Database) -> None:
    now = utcnow()
    later = now + timedelta(seconds=30)
    lease = await leased(db, observed_at=None, request_seq=1, consumed_seq=1)
    due = DueSooner(later, now, (("observed_at", "is not null", None), ("request_seq", ">", 1)))
    assert await write_due(db, lease, due) == later


async def test_now_when_an_observation_was_written_meanwhile(db: Database) -> None:
    now = utcnow()
    seen = now - timedelta(seconds=5)
    lease = await leased(db, observed_at=now - timedelta(seconds=1))
    due = DueSooner(now + timedelta(seconds=30), now, (("observed_at", ">", seen),))
    assert await write_due(db, lease, due) == now
    older = await leased(db, observed_at=seen - timedelta(seconds=1))
    assert await write_due(db, older, due) == now + timedelta(seconds=30)


async def test_now_when_a_request_arrived_past_what_was_consumed(db: Database) -> None:
    now = utcnow()
    lease = await leased(db, request_seq=3)
    due = DueSooner(None, now, (("request_seq", ">", 2),))
    assert await write_due(db, lease, due) == now
    settled = await leased(db, request_seq=2)
    assert await write_due(db, settled, due) is None


async def test_a_lost_lease_writes_nothing(db: Database) -> None:
    now = utcnow()
    lease = await leased(db)
    stale = Lease(lease.row_id, "another-token", "me")
    async with db.session() as session, session.begin():
        due = DueSooner(now, now, (("request_seq", ">", 0),))
        assert not await write_with_lease(
            session, Instance, stale, {"next_attempt_at": due}, release=True
        )
