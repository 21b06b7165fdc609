"""The inline SQLite driver: statements on the loop's thread, lock waits as asyncio sleeps.

Another connection (a thread here; another process in production: the API and the pipeline
process of `serve` share the file) holds the write lock; a write through the service's
`Database` must wait for it without stopping the event loop, and give up with SQLite's own
"database is locked" after its busy timeout."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from novita_manager.store import sqlite_inline
from novita_manager.store.db import Database


def hold_write_lock(path: Path, seconds: float, held: threading.Event) -> None:
    """Take SQLite's write lock from another connection for `seconds`, then commit."""
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        connection.execute("BEGIN IMMEDIATE")
        connection.execute("CREATE TABLE IF NOT EXISTS probe (x INTEGER)")
        held.set()
        time.sleep(seconds)
        connection.execute("COMMIT")
    finally:
        connection.close()


async def ticks_during(work: asyncio.Future[object] | asyncio.Task[object]) -> int:
    """How many 10 ms timer ticks the loop ran while `work` was pending."""
    ticks = 0
    while not work.done():
        await asyncio.sleep(0.01)
        ticks += 1
    return ticks


async def test_a_write_waits_for_another_writer_without_blocking_the_loop(tmp_path: Path) -> None:
    db = await Database.open(f"sqlite+aiosqlite:///{tmp_path}/x.db")
    try:
        path = tmp_path / "x.db"
        held = threading.Event()
        holder = threading.Thread(target=hold_write_lock, args=(path, 0.5, held))
        holder.start()
        await asyncio.to_thread(held.wait, 5)

        async def write() -> float:
            began = time.monotonic()
            async with db.session() as session, session.begin():
                await session.execute(text("CREATE TABLE IF NOT EXISTS other (y INTEGER)"))
            return time.monotonic() - began

        task = asyncio.ensure_future(write())
        ticks = await ticks_during(task)
        waited = await task
        await asyncio.to_thread(holder.join)
    finally:
        await db.close()
    assert waited >= 0.4  # it did wait for the other writer's commit...
    assert ticks >= 20  # ...while the loop kept running its timers (blocked, it would be ~1)


async def test_a_write_gives_up_after_the_busy_timeout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("novita_manager.store.db.SQLITE_BUSY_TIMEOUT_MS", 300)
    db = await Database.open(f"sqlite+aiosqlite:///{tmp_path}/x.db")
    held = threading.Event()
    holder = threading.Thread(target=hold_write_lock, args=(tmp_path / "x.db", 1.5, held))
    try:
        holder.start()
        await asyncio.to_thread(held.wait, 5)
        began = time.monotonic()
        with pytest.raises(OperationalError, match="database is locked"):
            async with db.session() as session, session.begin():
                await session.execute(text("CREATE TABLE other (y INTEGER)"))
        assert 0.25 <= time.monotonic() - began < 1.4
    finally:
        await asyncio.to_thread(holder.join)
        await db.close()


async def test_errors_keep_their_kind_and_reads_see_committed_rows(tmp_path: Path) -> None:
    db = await Database.open(f"sqlite+aiosqlite:///{tmp_path}/x.db")
    try:
        async with db.session() as session, session.begin():
            await session.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)"))
            await session.execute(text("INSERT INTO t VALUES (1, 'a'), (2, 'b')"))
        with pytest.raises(OperationalError, match="no such table"):
            async with db.session() as session, session.begin():
                await session.execute(text("SELECT * FROM missing"))
        async with db.read_session() as session:
            rows = (await session.execute(text("SELECT v FROM t ORDER BY id"))).scalars().all()
        assert rows == ["a", "b"]
    finally:
        await db.close()


def test_only_a_plain_busy_is_retried() -> None:
    busy = sqlite3.OperationalError("database is locked")
    busy.sqlite_errorcode = sqlite_inline.SQLITE_BUSY  # type: ignore[attr-defined]
    snapshot = sqlite3.OperationalError("database is locked")
    snapshot.sqlite_errorcode = sqlite_inline.SQLITE_BUSY_SNAPSHOT  # type: ignore[attr-defined]
    assert sqlite_inline._busy(busy)
    assert not sqlite_inline._busy(snapshot)
    assert not sqlite_inline._busy(sqlite3.OperationalError("no such table: x"))
