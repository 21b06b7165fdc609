"""Writing under a lease: `DueSooner` lets the UPDATE itself pick "due now" from the row."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import event, select, update

from novita_manager.engine.leases import (
    DueSooner,
    Lease,
    check_leases,
    flush_deferred,
    write_with_lease,
)
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


async def test_check_leases_reads_each_lease_with_one_statement_text_for_any_count(
    db: Database,
) -> None:
    """A group commit checks its units' leases in one SELECT; on PostgreSQL its text is the same
    whatever the number of ids (an array), so asyncpg prepares it once per connection."""
    held = [await leased(db) for _ in range(7)]
    lost = Lease(held[-1].row_id, "another-claim", "me")  # its row's token is held[-1]'s
    texts: set[str] = set()

    def seen(_c: object, _cur: object, statement: str, *_rest: object) -> None:
        if "lock_token" in statement and statement.lstrip().upper().startswith("SELECT"):
            texts.add(statement)

    event.listen(db.engine.sync_engine, "before_cursor_execute", seen)
    try:
        for group in ([held[0]], held[1:4], [*held[4:], lost]):
            async with db.session() as session, session.begin():
                await check_leases(session, Instance, group, dialect=db.dialect)
                written = [
                    await write_with_lease(session, Instance, lease, {"attempts": 5}, release=False)
                    for lease in group
                ]
                await flush_deferred(session)
            assert written == [lease is not lost for lease in group]
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", seen)
    if db.dialect == "postgresql":
        assert len(texts) == 1
    async with db.session() as session:
        attempts = (await session.scalars(select(Instance.attempts).order_by(Instance.id))).all()
    assert sorted(attempts) == [5] * 7  # lost's row is held[-1]'s: written once, by its lease
