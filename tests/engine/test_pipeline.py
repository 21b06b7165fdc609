"""The pipeline on SQLite and PostgreSQL: claims, leases, hints, draining and retry bookkeeping."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import update

from novita_manager.engine.leases import Lease, require, write_with_lease
from novita_manager.engine.pipeline import Pipeline
from novita_manager.metrics import Metrics
from novita_manager.store.db import Database
from novita_manager.store.types import utcnow
from tests.engine.items import Item, counting_handler, create_items_table, insert_items, load_items
from tests.fixtures.logs import CapturedLogs
from tests.fixtures.waiting import wait_until


@pytest.fixture
async def items_db(db: Database) -> Database:
    await create_items_table(db)
    return db


def make(
    db: Database, handler: Callable[[Lease, Item], Awaitable[None]], **kw: Any
) -> Pipeline[Item]:
    options: dict[str, Any] = {
        "workers": 4,
        "lease_seconds": 2.0,
        "idle_min": 0.01,
        "idle_max": 0.1,
    }
    options.update(kw)
    return Pipeline(name="test", db=db, model=Item, handler=handler, **options)


async def all_done(db: Database) -> bool:
    return all(item.done >= 1 for item in (await load_items(db)).values())


async def test_run_once_processes_due_rows_once_in_due_order(items_db: Database) -> None:
    await insert_items(items_db, 3, prefix="late", due_in=-1)
    await insert_items(items_db, 3, prefix="early", due_in=-10)
    await insert_items(items_db, 2, prefix="future", due_in=60)
    seen: list[str] = []
    handler = counting_handler(items_db, "me", on_done=lambda row_id, _: seen.append(row_id))
    pipeline = make(items_db, handler, workers=3)
    assert await pipeline.run_once() == 3
    assert sorted(seen) == ["early00000", "early00001", "early00002"]
    assert await pipeline.run_once() == 3
    assert await pipeline.run_once() == 0  # the rest are in the future; done rows are NULL
    items = await load_items(items_db)
    assert {i: item.done for i, item in items.items() if not i.startswith("future")} == {
        i: 1 for i in items if not i.startswith("future")
    }
    assert all(item.lock_token is None and item.lock_owner is None for item in items.values())


async def test_due_filter_limits_what_is_claimed(items_db: Database) -> None:
    await insert_items(items_db, 2, prefix="a", kind="a")
    await insert_items(items_db, 2, prefix="b", kind="b")
    pipeline = make(items_db, counting_handler(items_db, "me"), due_filter=Item.kind == "b")
    assert await pipeline.run_once() == 2
    assert await pipeline.run_once() == 0
    assert {i: x.done for i, x in (await load_items(items_db)).items()} == {
        "a00000": 0, "a00001": 0, "b00000": 1, "b00001": 1,
    }  # fmt: skip


async def test_a_claim_lag_leaves_the_rows_due_only_just_now(items_db: Database) -> None:
    """A spare process's pipeline (`claim_lag`) takes the rows that have waited, not fresh ones."""
    await insert_items(items_db, 2, prefix="fresh", due_in=0)
    await insert_items(items_db, 2, prefix="waited", due_in=-5)
    seen: list[str] = []
    handler = counting_handler(items_db, "me", on_done=lambda row_id, _: seen.append(row_id))
    pipeline = make(items_db, handler, claim_lag=3.0)
    assert await pipeline.run_once() == 2
    assert sorted(seen) == ["waited00000", "waited00001"]
    assert await pipeline.run_once() == 0  # the fresh rows are due, but not for 3 s yet
    assert await make(items_db, handler).run_once() == 2  # a pipeline without lag takes them


async def test_a_closed_claim_gate_claims_nothing_until_it_opens(items_db: Database) -> None:
    """A spare process claims only while a core is idle (`claim_gate`, cpu_idle.py)."""
    await insert_items(items_db, 3, prefix="due", due_in=-1)
    gate_open = False
    asked = 0

    def gate() -> bool:
        nonlocal asked
        asked += 1
        return gate_open

    pipeline = make(items_db, counting_handler(items_db, "me"), claim_gate=gate)
    await pipeline.start()
    try:

        async def polled() -> bool:
            return asked >= 3

        await wait_until(polled, timeout=5)  # it polls, and claims nothing
        assert all(item.done == 0 for item in (await load_items(items_db)).values())
        gate_open = True
        await wait_until(lambda: all_done(items_db), timeout=10)
    finally:
        await pipeline.stop()


async def test_first_rows_are_claimed_before_rows_due_earlier(items_db: Database) -> None:
    await insert_items(items_db, 3, prefix="old", due_in=-30, kind="a")
    await insert_items(items_db, 2, prefix="urgent", due_in=-1, kind="b")
    await insert_items(items_db, 2, prefix="later", due_in=60, kind="b")  # not due: not first
    seen: list[str] = []
    handler = counting_handler(items_db, "me", on_done=lambda row_id, _: seen.append(row_id))
    pipeline = make(items_db, handler, workers=3, first=Item.kind == "b")
    assert await pipeline.run_once() == 3
    assert sorted(seen) == ["old00000", "urgent00000", "urgent00001"]  # then by due time
    assert await pipeline.run_once() == 2
    assert sorted(seen[3:]) == ["old00001", "old00002"]


async def test_after_a_claim_of_every_due_row_the_next_waits_for_a_hint(
    items_db: Database,
) -> None:
    """A claim that found fewer rows than it could take took every due row: the fetcher then
    waits for a hint or its idle poll instead of claiming again at once (an empty claim)."""
    await insert_items(items_db, 2)
    pipeline = make(items_db, counting_handler(items_db, "me"), idle_min=5.0, idle_max=5.0)
    claims: list[int] = []
    claim_rows = pipeline._claim_rows

    async def counted(limit: int) -> list[tuple[Lease, Item]]:
        claimed = await claim_rows(limit)
        claims.append(len(claimed))
        return claimed

    pipeline._claim_rows = counted  # type: ignore[method-assign]
    await pipeline.start()
    try:
        await wait_until(lambda: all_done(items_db), what="both rows processed")
        await asyncio.sleep(0.2)  # well within the idle poll
        assert claims == [2]
        await insert_items(items_db, 1, prefix="new")
        pipeline.hint()
        await wait_until(lambda: all_done(items_db), what="the hinted row processed")
        assert claims == [2, 1]
    finally:
        await pipeline.stop()


async def test_a_lost_lease_makes_the_old_workers_write_a_no_op(items_db: Database) -> None:
    (row_id,) = await insert_items(items_db, 1)
    entered, resume = asyncio.Event(), asyncio.Event()
    results: list[bool] = []

    async def slow(lease: Lease, row: Item) -> None:
        entered.set()
        await resume.wait()
        async with items_db.session() as session, session.begin():
            held = await write_with_lease(
                session, Item, lease, {"value": "stale", "done": Item.done + 1}, release=True
            )
            results.append(held)
            if not held:
                await session.rollback()

    old = make(items_db, slow, lease_seconds=30)
    old_run = asyncio.create_task(old.run_once())
    await entered.wait()
    # The old worker stalls past its lease (e.g. a paused VM): expire it, another worker claims.
    async with items_db.session() as session, session.begin():
        await session.execute(update(Item).values(lock_expires_at=utcnow() - timedelta(seconds=1)))

    async def fresh(lease: Lease, row: Item) -> None:
        async with items_db.session() as session, session.begin():
            values = {"value": "fresh", "done": Item.done + 1, "next_attempt_at": None}
            assert await write_with_lease(session, Item, lease, values, release=True)

    assert await make(items_db, fresh).run_once() == 1
    resume.set()
    assert await old_run == 1
    assert results == [False]
    item = (await load_items(items_db))[row_id]
    assert (item.value, item.done, item.lock_token) == ("fresh", 1, None)


async def test_heartbeat_keeps_a_long_step_leased(items_db: Database) -> None:
    await insert_items(items_db, 1)
    pipeline = make(items_db, counting_handler(items_db, "slow", delay=1.5), lease_seconds=0.6)
    run = asyncio.create_task(pipeline.run_once())
    await asyncio.sleep(1.0)  # past the first lease: only heartbeats keep it
    other = make(items_db, counting_handler(items_db, "thief"))
    assert await other.run_once() == 0
    assert await run == 1
    (item,) = (await load_items(items_db)).values()
    assert (item.done, item.processed_by) == (1, "slow")


async def test_never_claims_more_than_free_workers(items_db: Database) -> None:
    await insert_items(items_db, 10)
    release = asyncio.Event()

    async def blocked(lease: Lease, row: Item) -> None:
        await release.wait()
        await counting_handler(items_db, "me")(lease, row)

    pipeline = make(items_db, blocked, workers=2)
    await pipeline.start()
    try:
        await asyncio.sleep(0.4)
        leased = [x for x in (await load_items(items_db)).values() if x.lock_token is not None]
        assert len(leased) == 2
        release.set()
        await wait_until(lambda: all_done(items_db))
    finally:
        await pipeline.stop()
    assert {x.done for x in (await load_items(items_db)).values()} == {1}


async def test_hint_wakes_a_sleeping_fetcher_at_once(items_db: Database) -> None:
    done = asyncio.Event()
    handler = counting_handler(items_db, "me", on_done=lambda *_: done.set())
    pipeline = make(items_db, handler, idle_min=5, idle_max=5)
    await pipeline.start()
    try:
        await asyncio.sleep(0.2)  # the fetcher found nothing and sleeps for 5 s
        await insert_items(items_db, 1, prefix="unhinted")
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(done.wait(), 0.5)
        await insert_items(items_db, 1, prefix="hinted")
        started = time.monotonic()
        pipeline.hint()
        await asyncio.wait_for(done.wait(), 2)
        assert time.monotonic() - started < 0.5
    finally:
        await pipeline.stop()


async def test_stop_drains_work_in_progress(items_db: Database) -> None:
    await insert_items(items_db, 3)
    entered = asyncio.Event()
    inner = counting_handler(items_db, "me", delay=0.5)

    async def handler(lease: Lease, row: Item) -> None:
        entered.set()
        await inner(lease, row)

    pipeline = make(items_db, handler)
    await pipeline.start()
    await entered.wait()
    await pipeline.stop(drain_timeout=5)
    items = (await load_items(items_db)).values()
    assert [(x.done, x.lock_token) for x in items] == [(1, None)] * 3


async def test_stop_cancels_after_the_drain_timeout_and_leaves_the_lease(
    items_db: Database,
) -> None:
    await insert_items(items_db, 1)
    entered = asyncio.Event()
    inner = counting_handler(items_db, "me", delay=30)

    async def handler(lease: Lease, row: Item) -> None:
        entered.set()
        await inner(lease, row)

    pipeline = make(items_db, handler, owner="stopper")
    await pipeline.start()
    await entered.wait()
    started = time.monotonic()
    await pipeline.stop(drain_timeout=0.2)
    assert time.monotonic() - started < 2
    (item,) = (await load_items(items_db)).values()
    assert (item.done, item.lock_owner) == (0, "stopper")
    assert item.lock_token is not None  # expires on its own; another process continues


async def test_handler_exception_records_retry_bookkeeping(
    items_db: Database, captured_logs: CapturedLogs
) -> None:
    (row_id,) = await insert_items(items_db, 1)
    metrics = Metrics()

    async def boom(lease: Lease, row: Item) -> None:
        raise ValueError("upstream said no")

    pipeline = make(items_db, boom, retry_base=10, retry_cap=100, metrics=metrics)
    before = utcnow()
    assert await pipeline.run_once() == 1
    item = (await load_items(items_db))[row_id]
    assert item.attempts == 1
    assert item.last_error == "ValueError: upstream said no"
    assert item.next_attempt_at is not None
    assert before + timedelta(seconds=7.9) <= item.next_attempt_at
    assert item.next_attempt_at <= utcnow() + timedelta(seconds=12.1)
    assert (item.lock_token, item.lock_owner, item.lock_expires_at) == (None, None, None)
    assert await pipeline.run_once() == 0  # backing off

    async with items_db.session() as session, session.begin():
        await session.execute(update(Item).values(next_attempt_at=utcnow()))
    assert await pipeline.run_once() == 1
    assert (await load_items(items_db))[row_id].attempts == 2
    assert metrics.pipeline_processed.labels("test", "error")._value.get() == 2
    (failure, *_) = captured_logs.events("pipeline_step_failed")
    assert (failure["pipeline"], failure["row_id"]) == ("test", row_id)
    assert "ValueError" in failure.get("exception", "")


async def test_metrics_count_outcomes_and_lag(items_db: Database) -> None:
    await insert_items(items_db, 2, due_in=-3)
    metrics = Metrics()
    pipeline = make(items_db, counting_handler(items_db, "me"), metrics=metrics)
    assert await pipeline.run_once() == 2
    assert metrics.pipeline_processed.labels("test", "ok")._value.get() == 2
    text = metrics.render().decode()
    assert 'novita_manager_pipeline_lag_seconds_count{pipeline="test"} 2.0' in text


async def test_a_release_that_rolled_back_is_still_cleared_by_the_pipeline(
    items_db: Database,
) -> None:
    await insert_items(items_db, 2)

    async def undecided(lease: Lease, row: Item) -> None:
        async with items_db.session() as session:
            values = {"done": Item.done + 1, "next_attempt_at": None}
            assert await write_with_lease(session, Item, lease, values, release=True)
            await session.rollback()
        if row.id.endswith("1"):
            raise RuntimeError("after the rollback")

    assert await make(items_db, undecided).run_once() == 2
    items = await load_items(items_db)  # by id: PostgreSQL returns updated rows in any order
    assert [(x.done, x.lock_token, x.attempts) for _, x in sorted(items.items())] == [
        (0, None, 0),  # returned normally: lease released, row still due
        (0, None, 1),  # raised: failure recorded
    ]


async def test_lease_lost_raised_by_a_handler_is_not_a_failure(items_db: Database) -> None:
    (row_id,) = await insert_items(items_db, 1)
    metrics = Metrics()

    async def gives_up(lease: Lease, row: Item) -> None:
        async with items_db.session() as session, session.begin():
            await session.execute(update(Item).values(lock_token="someone-else"))
        async with items_db.session() as session, session.begin():
            require(await write_with_lease(session, Item, lease, {"value": "x"}, release=True))

    assert await make(items_db, gives_up, metrics=metrics).run_once() == 1
    item = (await load_items(items_db))[row_id]
    assert (item.attempts, item.last_error, item.value) == (0, None, None)
    assert metrics.pipeline_processed.labels("test", "lease_lost")._value.get() == 1


async def test_backlogged_while_claims_come_full(items_db: Database) -> None:
    """`backlogged` (what the status sync waits for) is true while claims come back full and
    false once a claim finds fewer rows due than it could take."""
    await insert_items(items_db, 12)
    gate = asyncio.Event()
    handler = counting_handler(items_db, "me")

    async def slow(lease: Lease, row: Item) -> None:
        await gate.wait()
        await handler(lease, row)

    pipeline = make(items_db, slow, workers=4)

    async def held_four() -> bool:
        return len(pipeline._held) == 4

    async def drained() -> bool:
        return not pipeline.backlogged

    assert not pipeline.backlogged
    await pipeline.start()
    try:
        await wait_until(held_four, what="a full first claim")
        assert pipeline.backlogged  # 12 due, 4 taken: more are waiting
        gate.set()
        await wait_until(lambda: all_done(items_db), what="every row processed")
        await wait_until(drained, what="the backlog gone")
    finally:
        await pipeline.stop()
