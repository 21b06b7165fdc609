"""The events log: filled by triggers from history and outbox inserts, read in commit order."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text

from novita_manager.store.db import Database
from novita_manager.store.events import SEQUENCER_LOCK_KEY, newest_id, read_after, sequence
from novita_manager.store.models import InstanceEvent
from novita_manager.store.types import utcnow
from tests.webhooks.factories import add_delivery, add_instance


async def add_history(db: Database, instance_id: str, to_status: str, reason: str) -> None:
    async with db.session() as session, session.begin():
        session.add(
            InstanceEvent(
                instance_id=instance_id,
                at=utcnow(),
                from_status="starting",
                to_status=to_status,
                novita_status="running",
                reason=reason,
            )
        )


async def test_history_and_webhooks_share_one_ordered_id(db: Database) -> None:
    first = await add_instance(db)
    second = await add_instance(db)
    async with db.read_session() as session:
        start = await newest_id(session)
    await add_history(db, first, "running", "seen running")
    await add_delivery(db, first, None, status="skipped", event_type="instance.running")
    await add_history(db, second, "stopped", "stopped by user")
    await add_delivery(db, second, "http://127.0.0.1:9/hook", event_type="instance.stopped")
    await number(db)  # PostgreSQL: numbered after commit (SQLite: by the trigger)

    async with db.read_session() as session:
        records = await read_after(session, start)
        only_second = await read_after(session, start, instance_id=second)
        after_two = await read_after(session, records[1].id)
        newest = await newest_id(session)

    assert [r.type for r in records] == [
        "instance.status",
        "instance.running",
        "instance.status",
        "instance.stopped",
    ]
    ids = [r.id for r in records]
    assert ids == sorted(set(ids))
    assert len(ids) == 4
    assert newest == ids[-1]
    assert [r.instance_id for r in records] == [first, first, second, second]
    status = records[0].body
    assert status["data"] == {
        "instanceId": first,
        "name": f"inst-{first[:6]}",
        "fromStatus": "starting",
        "status": "running",
        "novitaStatus": "running",
        "reason": "seen running",
    }
    assert status["timestamp"].endswith("Z")
    # A webhook event's body is exactly the payload the webhook is sent.
    assert records[1].body["type"] == "instance.running"
    assert records[1].body["data"]["instanceId"] == first
    assert [r.id for r in only_second] == ids[2:]
    assert [r.id for r in after_two] == ids[2:]


@pytest.fixture
async def pg_db(postgres_url: str) -> AsyncIterator[Database]:
    database = await Database.open(postgres_url)
    try:
        yield database
    finally:
        await database.close()


@pytest.mark.postgres
async def test_numbers_follow_commit_order_on_postgresql(pg_db: Database) -> None:
    """Writers never wait for each other; a row is numbered once it is committed, above every
    number before, so a reader of `seq > last` never skips one committed late."""
    db = pg_db
    instance_id = await add_instance(db)
    await number(db)
    async with db.read_session() as session:
        start = await newest_id(session)
    slow = db.session()
    await slow.begin()
    slow.add(InstanceEvent(instance_id=instance_id, at=utcnow(), to_status="starting"))
    await slow.flush()  # its log row exists, uncommitted, without a number

    await asyncio.wait_for(add_history(db, instance_id, "running", "later"), 5)  # no waiting
    assert await number(db) == 1  # only the committed row
    async with db.read_session() as session:
        first = await read_after(session, start)
    assert [r.body["data"]["reason"] for r in first] == ["later"]

    await slow.commit()
    await slow.close()
    assert await number(db) == 1
    async with db.read_session() as session:
        second = await read_after(session, first[-1].id)
        everything = await read_after(session, start)
    assert [r.body["data"]["status"] for r in second] == ["starting"]
    assert second[0].id > first[-1].id
    assert [r.id for r in everything] == [first[0].id, second[0].id]


@pytest.mark.postgres
async def test_one_sequencer_at_a_time(pg_db: Database) -> None:
    instance_id = await add_instance(pg_db)
    await add_history(pg_db, instance_id, "running", "one")
    async with pg_db.session() as holder, holder.begin():
        await holder.execute(
            text("SELECT pg_advisory_xact_lock(:key)"), {"key": SEQUENCER_LOCK_KEY}
        )
        assert await number(pg_db) == 0  # another replica is numbering: skip, do not wait
    assert await number(pg_db) == 1


async def number(db: Database) -> int:
    async with db.session() as session:
        return await sequence(session)


async def test_the_upgrade_copies_the_past_into_the_log_in_order(database_url: str) -> None:
    """History and deliveries written before migration 0005 are in the log after it."""
    from alembic import command
    from sqlalchemy.ext.asyncio import create_async_engine

    from novita_manager.store.migrate import alembic_config

    engine = create_async_engine(database_url)
    async with engine.connect() as conn:
        await conn.run_sync(lambda sync: command.upgrade(alembic_config(sync), "0004"))
        await conn.commit()
    await engine.dispose()
    old = await Database.open(database_url, migrate=False)
    instance_id = await add_instance(old)
    await add_history(old, instance_id, "starting", "first")
    await add_delivery(old, instance_id, None, status="skipped", event_type="instance.running")
    await add_history(old, instance_id, "stopped", "last")
    await old.close()

    db = await Database.open(database_url)  # migrates to the head: 0005 and later
    try:
        async with db.read_session() as session:
            records = await read_after(session, 0)
        assert [r.type for r in records] == [
            "instance.status",
            "instance.running",
            "instance.status",
        ]
        assert [r.body["data"].get("reason") for r in records] == ["first", None, "last"]
        await add_history(db, instance_id, "deleted", "after the upgrade")  # the trigger
        await number(db)
        async with db.read_session() as session:
            assert (await read_after(session, records[-1].id))[0].body["data"]["reason"] == (
                "after the upgrade"
            )
    finally:
        await db.close()
