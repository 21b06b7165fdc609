"""Reads do not queue behind a write on SQLite (WAL readers), and cannot write."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncSession

from novita_manager.store.db import Database
from novita_manager.store.models import IdempotencyKey
from novita_manager.store.types import utcnow


async def test_read_session_answers_while_a_write_is_open(db: Database) -> None:
    async with db.session() as writer, writer.begin():
        writer.add(
            IdempotencyKey(
                key="k",
                request_hash="h",
                instance_id="i",
                response_status=201,
                response_body={},
                created_at=utcnow(),
            )
        )
        await writer.flush()  # the write transaction holds SQLite's lock from here

        async def count() -> int:
            async with db.read_session() as reader:
                return int(
                    await reader.scalar(select(func.count()).select_from(IdempotencyKey)) or 0
                )

        assert await asyncio.wait_for(count(), timeout=2) == 0  # the committed snapshot
    async with db.read_session() as reader:
        assert await reader.scalar(select(func.count()).select_from(IdempotencyKey)) == 1


async def test_read_session_cannot_write_on_sqlite(db: Database) -> None:
    if db.dialect != "sqlite":
        pytest.skip("PostgreSQL read sessions share the main pool")
    async with db.read_session() as reader:
        with pytest.raises(OperationalError, match="readonly"):
            await reader.execute(text("DELETE FROM idempotency_keys"))


@pytest.mark.postgres
async def test_reads_and_lone_statements_run_without_a_transaction_on_postgresql(
    postgres_url: str,
) -> None:
    """On PostgreSQL each statement of a read or statement session is its own transaction (no
    BEGIN, no COMMIT or ROLLBACK round trip): `now()`, a transaction's start, moves between two
    statements. In `session()` it does not, also on connections a statement session used."""
    db = await Database.open(postgres_url)

    async def two_nows(make_session: Callable[[], AsyncSession]) -> tuple[Any, Any]:
        async with make_session() as session:
            first = await session.scalar(text("SELECT now()"))
            await asyncio.sleep(0.01)
            second = await session.scalar(text("SELECT now()"))
        return first, second

    try:
        first, second = await two_nows(db.read_session)
        assert first < second
        first, second = await two_nows(db.statement_session)
        assert first < second
        # Every pooled connection through autocommit once, then transactions on them again.
        sessions = [db.statement_session() for _ in range(20)]
        for session in sessions:
            await session.scalar(text("SELECT 1"))
        for session in sessions:
            await session.close()
        for _ in range(20):
            first, second = await two_nows(db.session)
            assert first == second
    finally:
        await db.close()
