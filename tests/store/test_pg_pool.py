"""Pooled PostgreSQL connections: pinged only after resting, replaced when the ping fails."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from novita_manager.store.pg_pool import ping_when_idle

pytestmark = pytest.mark.postgres


def counting_pings(engine: Any) -> list[int]:
    pings: list[int] = []
    original = engine.sync_engine.dialect.do_ping

    def do_ping(dbapi_connection: Any) -> bool:
        pings.append(1)
        return bool(original(dbapi_connection))

    engine.sync_engine.dialect.do_ping = do_ping
    return pings


async def test_a_connection_back_from_use_is_not_pinged_and_a_rested_one_is(
    postgres_url: str,
) -> None:
    engine = create_async_engine(postgres_url, pool_size=1, max_overflow=0)
    ping_when_idle(engine, idle_after=0.3)
    pings = counting_pings(engine)
    try:
        for _ in range(5):
            async with engine.connect() as connection:
                assert await connection.scalar(text("SELECT 1")) == 1
        assert pings == []
        await asyncio.sleep(0.4)
        async with engine.connect() as connection:
            assert await connection.scalar(text("SELECT 1")) == 1
        assert pings == [1]
    finally:
        await engine.dispose()


async def test_a_rested_connection_the_server_closed_is_replaced_unseen(postgres_url: str) -> None:
    engine = create_async_engine(postgres_url, pool_size=1, max_overflow=0)
    ping_when_idle(engine, idle_after=0.3)
    try:
        async with engine.connect() as connection:
            first = await connection.scalar(text("SELECT pg_backend_pid()"))
        killer = create_async_engine(postgres_url, poolclass=None)
        async with killer.connect() as connection:
            await connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": first})
        await killer.dispose()
        await asyncio.sleep(0.4)
        async with engine.connect() as connection:  # no error: the ping found it closed
            second = await connection.scalar(text("SELECT pg_backend_pid()"))
        assert second != first
    finally:
        await engine.dispose()
