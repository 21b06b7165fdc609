"""On PostgreSQL the status sync's write takes its row locks in id order, as group commits do
(`engine/group_commit.py`), so the two cannot deadlock. Its IN-list UPDATE of rows seen again
used to lock in scan order: here the table's physical order is the reverse of the ids', and a
transaction that locks in id order (as a group commit does) ran into it."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest
from sqlalchemy import select

from novita_manager.engine.status_sync.record import record
from novita_manager.store.db import Database
from novita_manager.store.models import Instance
from novita_manager.store.types import utcnow
from tests.engine.steps import insert_instance

FIRST, LAST = "a" * 32, "z" * 32


@pytest.mark.postgres
async def test_the_sync_write_and_an_id_ordered_writer_do_not_deadlock(postgres_url: str) -> None:
    db = await Database.open(postgres_url)
    try:
        await insert_instance(db, id=LAST)  # first in the table's physical order
        await insert_instance(db, id=FIRST)
        seen_again = [
            SimpleNamespace(id=row_id, operation="create", last_synced_at=None)
            for row_id in (FIRST, LAST)
        ]
        started = utcnow()
        async with db.session() as writer, writer.begin():  # a group commit, in id order
            await writer.execute(select(Instance.id).where(Instance.id == FIRST).with_for_update())
            sync = asyncio.create_task(
                record(
                    db,
                    [],
                    {},
                    started,
                    startup_timeout=600,
                    resync_write_interval=60,
                    unchanged=seen_again,
                )
            )
            await asyncio.sleep(0.5)  # the sync is waiting for FIRST now
            async with asyncio.timeout(10):  # a deadlock aborts one side after 1 s instead
                await writer.execute(
                    select(Instance.id).where(Instance.id == LAST).with_for_update()
                )
        async with asyncio.timeout(10):
            assert await sync == (0, False)
        async with db.session() as session:
            seen = set((await session.scalars(select(Instance.observed_at))).all())
        assert seen == {started}  # both rows written by the sync, after the writer committed
    finally:
        await db.close()
