"""Work survives a crash: engines in subprocesses are killed with SIGKILL mid-work and every row's
step still commits exactly once (counted by `Item.done`)."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from novita_manager.store.db import Database
from novita_manager.store.types import utcnow
from tests.engine.items import counting_handler, create_items_table, insert_items, load_items
from tests.engine.test_pipeline import make

ROOT = Path(__file__).resolve().parents[2]
LEASE = 1.5


class Engine:
    """An engine process whose `DONE <id>` lines are collected as they come."""

    def __init__(self, process: asyncio.subprocess.Process, owner: str) -> None:
        self.process = process
        self.owner = owner
        self.done: list[str] = []
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def start(cls, url: str, owner: str, *args: str) -> Engine:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tests.engine.engine_proc", url, owner, "--lease", str(LEASE),
            *args, cwd=ROOT, stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        return cls(process, owner)

    async def _read(self) -> None:
        assert self.process.stdout is not None
        async for raw in self.process.stdout:
            kind, _, row_id = raw.decode().strip().partition(" ")
            if kind == "DONE":
                self.done.append(row_id)

    async def wait_done(self, count: int, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while len(self.done) < count:
            assert self.process.returncode is None, f"{self.owner} exited"
            assert time.monotonic() < deadline, f"{self.owner} did only {len(self.done)}"
            await asyncio.sleep(0.02)

    async def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.process.kill()  # SIGKILL: no cleanup, no lease release
        await self.process.wait()
        await self._reader  # the pipe's remaining lines, then EOF


@pytest.fixture
async def engines() -> AsyncIterator[list[Engine]]:
    started: list[Engine] = []
    yield started
    for engine in started:
        await engine.kill()


async def test_rows_in_work_when_the_process_dies_finish_exactly_once_after_restart(
    database_url: str, engines: list[Engine]
) -> None:
    db = await Database.open(database_url)
    await create_items_table(db)
    ids = await insert_items(db, 40)
    await db.close()  # SQLite allows one process: the engine below takes the file

    crashed = await Engine.start(database_url, "crashed", "--workers", "4", "--delay", "0.3")
    engines.append(crashed)
    await crashed.wait_done(8)
    # Batches finish together (same delay): land the kill inside the next batch's 0.3 s step.
    await asyncio.sleep(0.15)
    await crashed.kill()
    killed_at = time.monotonic()

    db = await Database.open(database_url)  # the flock died with the process
    try:
        items = await load_items(db)
        in_work = {i for i, x in items.items() if x.lock_token is not None and x.done == 0}
        assert in_work, "the kill should have caught rows in work"
        assert all(items[i].lock_owner == "crashed" for i in in_work)
        seen: list[str] = []
        restarted = make(
            db, counting_handler(db, "restarted", on_done=lambda i, _: seen.append(i)), workers=8
        )
        while await restarted.run_once():
            pass  # the rows nobody holds, at once
        if time.monotonic() - killed_at < LEASE - 0.2:
            assert not in_work & set(seen), "a live lease was taken before it expired"
        await asyncio.sleep(max(0.0, LEASE + 0.1 - (time.monotonic() - killed_at)))
        while await restarted.run_once():
            pass
        items = await load_items(db)
    finally:
        await db.close()
    assert {i: x.done for i, x in items.items()} == dict.fromkeys(ids, 1)
    assert {items[i].processed_by for i in in_work} == {"restarted"}
    assert {items[i].processed_by for i in crashed.done} == {"crashed"}
    assert all(x.next_attempt_at is None and x.lock_token is None for x in items.values())


@pytest.mark.postgres
async def test_two_engine_processes_share_500_rows_exactly_once_and_survive_a_kill(
    postgres_url: str, engines: list[Engine]
) -> None:
    db = await Database.open(postgres_url)
    try:
        await create_items_table(db)
        ids = await insert_items(db, 500)
        a = await Engine.start(postgres_url, "engine-a", "--delay", "0.01")
        b = await Engine.start(postgres_url, "engine-b", "--delay", "0.01")
        engines += [a, b]
        await a.wait_done(60)
        await b.wait_done(60)
        await a.kill()
        deadline = time.monotonic() + 40
        while sum(x.done for x in (await load_items(db)).values()) < 500:
            assert time.monotonic() < deadline, "engine-b did not finish the rows"
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.3)  # would expose a late duplicate
        items = await load_items(db)
    finally:
        await db.close()
    assert {i: x.done for i, x in items.items()} == dict.fromkeys(ids, 1)
    by = [x.processed_by for x in items.values()]
    assert by.count("engine-a") >= 60
    assert by.count("engine-b") >= 60
    assert by.count("engine-a") + by.count("engine-b") == 500
    # Every step a reported is a's in the table (a may die between commit and report).
    assert {i for i, x in items.items() if x.processed_by == "engine-a"} >= set(a.done)
    assert all(x.lock_token is None for x in items.values())
    assert all(x.next_attempt_at is None or x.next_attempt_at <= utcnow() for x in items.values())
