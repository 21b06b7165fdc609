"""Reads do not queue behind a write on SQLite (WAL readers), and cannot write."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import OperationalError

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
