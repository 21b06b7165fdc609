"""SQLite sessions close in place (store/db.py `InlineSession`): leaving `async with` costs no turn
of the event loop, and the connection still goes back to its pool, on success and on error."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from novita_manager.store.db import Database, InlineSession
from novita_manager.store.models import IdempotencyKey
from novita_manager.store.types import utcnow


@pytest.fixture
async def sqlite_db() -> AsyncIterator[Database]:
    with tempfile.TemporaryDirectory() as folder:
        database = await Database.open(f"sqlite+aiosqlite:///{Path(folder) / 'x.db'}")
        try:
            yield database
        finally:
            await database.close()


class Turns:
    """Counts the turns of the running loop (a callback that schedules itself each turn)."""

    def __init__(self) -> None:
        self.count = 0
        self._loop = asyncio.get_running_loop()
        self._loop.call_soon(self._tick)
        self._stopped = False

    def _tick(self) -> None:
        self.count += 1
        if not self._stopped:
            self._loop.call_soon(self._tick)

    def stop(self) -> None:
        self._stopped = True


def key_row(key: str) -> IdempotencyKey:
    return IdempotencyKey(
        key=key,
        request_hash="h",
        instance_id="i",
        response_status=201,
        response_body={},
        created_at=utcnow(),
    )


async def count_keys(db: Database) -> int:
    async with db.read_session() as reader:
        return int(await reader.scalar(select(func.count()).select_from(IdempotencyKey)) or 0)


async def test_a_transaction_and_a_read_take_no_turn_of_the_loop(sqlite_db: Database) -> None:
    turns = Turns()
    await asyncio.sleep(0)
    try:
        before = turns.count
        async with sqlite_db.session() as session, session.begin():
            session.add(key_row("a"))
        assert await count_keys(sqlite_db) == 1
        # SQLAlchemy's own AsyncSession closes in a task of its own: three turns per session.
        assert turns.count == before
    finally:
        turns.stop()
    pool = sqlite_db.engine.sync_engine.pool
    assert pool.checkedout() == 0  # type: ignore[attr-defined]
    assert sqlite_db.read_engine.sync_engine.pool.checkedout() == 0  # type: ignore[attr-defined]


async def test_an_error_rolls_back_and_returns_the_connection(sqlite_db: Database) -> None:
    async def fail_halfway() -> None:
        async with sqlite_db.session() as session, session.begin():
            session.add(key_row("b"))
            await session.flush()
            raise RuntimeError("halfway")

    with pytest.raises(RuntimeError):
        await fail_halfway()
    assert sqlite_db.engine.sync_engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    assert await count_keys(sqlite_db) == 0
    # The single write connection is free again: the next transaction gets it at once.
    async with asyncio.timeout(2):
        async with sqlite_db.session() as session, session.begin():
            session.add(key_row("c"))
    assert await count_keys(sqlite_db) == 1


async def test_only_sqlite_sessions_close_in_place(db: Database) -> None:
    """On PostgreSQL a close may wait for the server, so a cancellation could cut it short:
    there the session stays SQLAlchemy's, which closes in a shielded task."""
    session = db.session()
    try:
        expected = InlineSession if db.dialect == "sqlite" else AsyncSession
        assert type(session) is expected
    finally:
        await session.close()
