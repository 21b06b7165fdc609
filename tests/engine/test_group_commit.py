"""Group commit: concurrent units share a transaction; a unit's failure or lost lease is its own."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from sqlalchemy import event, func, select, update

from novita_manager.domain.statuses import Status
from novita_manager.engine.group_commit import Batch, GroupCommit
from novita_manager.engine.leases import Lease, write_with_lease
from novita_manager.store.db import Database
from novita_manager.store.models import Instance, InstanceEvent
from novita_manager.store.types import utcnow
from tests.engine.steps import insert_instance


async def lease_rows(db: Database, ids: list[str]) -> dict[str, Lease]:
    leases = {row_id: Lease(row_id, f"token-{row_id}", "me") for row_id in ids}
    async with db.session() as session, session.begin():
        for lease in leases.values():
            await session.execute(
                update(Instance).where(Instance.id == lease.row_id).values(lock_token=lease.token)
            )
    return leases


def step(lease: Lease, *, fail: bool = False) -> Callable[[Batch], Awaitable[bool]]:
    """A unit as a provisioning step writes it: the row under its lease, and a history entry."""

    async def unit(batch: Batch) -> bool:
        values = {"status": Status.RUNNING.value}
        if not await write_with_lease(batch.session, Instance, lease, values, release=True):
            return False
        if fail:
            raise RuntimeError("this unit fails")
        event = InstanceEvent(
            instance_id=lease.row_id, at=utcnow(), from_status="starting", to_status="running"
        )
        batch.insert(event)
        return True

    return unit


async def test_concurrent_units_share_transactions_and_insert_together(db: Database) -> None:
    ids = [await insert_instance(db) for _ in range(20)]
    leases = await lease_rows(db, ids)
    commits = GroupCommit(db)
    results = await asyncio.gather(*(commits.run(step(lease)) for lease in leases.values()))
    assert results == [True] * 20
    assert commits.units == 20
    assert commits.transactions < 20  # the first ran alone, the others queued behind it
    async with db.session() as session:
        assert await session.scalar(select(func.count()).select_from(InstanceEvent)) == 20
        statuses = set((await session.scalars(select(Instance.status))).all())
        tokens = set((await session.scalars(select(Instance.lock_token))).all())
    assert statuses == {Status.RUNNING.value}
    assert tokens == {None}


async def test_a_lost_lease_writes_nothing_and_the_others_commit(db: Database) -> None:
    ids = [await insert_instance(db) for _ in range(3)]
    leases = await lease_rows(db, ids)
    stale = Lease(ids[1], "someone-elses-token", "me")
    units = [step(leases[ids[0]]), step(stale), step(leases[ids[2]])]
    commits = GroupCommit(db)
    assert await asyncio.gather(*(commits.run(unit) for unit in units)) == [True, False, True]
    async with db.session() as session:
        events = set((await session.scalars(select(InstanceEvent.instance_id))).all())
        untouched = await session.scalar(select(Instance.status).where(Instance.id == ids[1]))
    assert events == {ids[0], ids[2]}
    assert untouched == Status.CREATING.value


async def test_a_failing_unit_fails_alone(db: Database) -> None:
    ids = [await insert_instance(db) for _ in range(4)]
    leases = await lease_rows(db, ids)
    commits = GroupCommit(db)
    units = [step(leases[ids[0]]), step(leases[ids[1]], fail=True)]
    units += [step(leases[ids[2]]), step(leases[ids[3]])]
    results = await asyncio.gather(*(commits.run(unit) for unit in units), return_exceptions=True)
    assert [results[0], results[2], results[3]] == [True, True, True]
    assert isinstance(results[1], RuntimeError)
    async with db.session() as session:
        events = set((await session.scalars(select(InstanceEvent.instance_id))).all())
        failed_row = await session.scalar(select(Instance.status).where(Instance.id == ids[1]))
    assert events == {ids[0], ids[2], ids[3]}
    assert failed_row == Status.CREATING.value  # its transaction rolled back


async def test_a_unit_alone_raises_its_error(db: Database) -> None:
    (row_id,) = [await insert_instance(db)]
    leases = await lease_rows(db, [row_id])
    with pytest.raises(RuntimeError):
        await GroupCommit(db).run(step(leases[row_id], fail=True))


async def test_several_writers_commit_every_unit_once_and_none_waits_forever(db: Database) -> None:
    """Writers side by side (PostgreSQL's default; forced here on both dialects: SQLite's single
    connection then queues them in its pool). Units arrive in waves, so writers finish and new
    ones start. (A unit queued in the loop turn between a writer's return and its task's done
    callback once waited forever; tests/engine/test_readings_e2e.py caught that, this test
    does not reach that turn.)"""
    ids = [await insert_instance(db) for _ in range(60)]
    leases = list((await lease_rows(db, ids)).values())
    commits = GroupCommit(db, writers=4)
    results: list[bool] = []
    for wave in range(6):
        chunk = leases[wave * 10 : (wave + 1) * 10]
        async with asyncio.timeout(20):
            results += await asyncio.gather(*(commits.run(step(lease)) for lease in chunk))
        await asyncio.sleep(0)  # a writer may be done but its task not yet discarded
    assert results == [True] * 60
    assert commits.units == 60
    async with db.session() as session:
        assert await session.scalar(select(func.count()).select_from(InstanceEvent)) == 60


async def test_leases_checked_together_write_in_one_executemany(db: Database) -> None:
    """Units that name their lease: the shared transaction checks every lease with one SELECT
    (locking the rows on PostgreSQL) and writes the held ones with one executemany, instead of
    an UPDATE each; a lost lease still writes nothing, and the others commit."""
    ids = [await insert_instance(db) for _ in range(12)]
    leases = await lease_rows(db, ids)
    leases[ids[5]] = Lease(ids[5], "someone-elses-token", "me")
    updates: list[bool] = []  # one entry per UPDATE of instances sent: executemany or not

    def count(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        if statement.startswith("UPDATE instances"):
            updates.append(bool(_args[-1]))  # (parameters, context, executemany)

    event.listen(db.engine.sync_engine, "before_cursor_execute", count)
    try:
        commits = GroupCommit(db, model=Instance)
        gate = asyncio.Event()

        async def hold(batch: Batch) -> bool:  # keeps the writer busy while the others queue
            await gate.wait()
            return True

        first = asyncio.create_task(commits.run(hold))
        await asyncio.sleep(0.05)
        others = [
            asyncio.create_task(commits.run(step(lease), key=lease.row_id, lease=lease))
            for lease in leases.values()
        ]
        await asyncio.sleep(0.05)
        gate.set()
        assert await first
        results = await asyncio.gather(*others)
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", count)
    assert results == [row_id != ids[5] for row_id in leases]
    assert commits.transactions == 2  # the holder alone, then the twelve together
    assert updates == [True]  # the eleven held leases' writes: one executemany
    async with db.session() as session:
        events = set((await session.scalars(select(InstanceEvent.instance_id))).all())
        rows = {row.id: row for row in (await session.scalars(select(Instance))).all()}
    assert events == set(ids) - {ids[5]}
    assert rows[ids[5]].status == Status.CREATING.value
    assert rows[ids[5]].lock_token == f"token-{ids[5]}"  # the other holder's lease is intact
    for row_id in set(ids) - {ids[5]}:
        assert (rows[row_id].status, rows[row_id].lock_token) == (Status.RUNNING.value, None)


async def test_a_lingering_commit_gathers_a_stream_and_a_lone_unit_does_not_wait(
    db: Database,
) -> None:
    """With a linger (webhook records), units that trickle in while others stream share
    transactions; a unit after a quiet moment commits at once, as without one."""
    ids = [await insert_instance(db) for _ in range(21)]
    leases = list((await lease_rows(db, ids)).values())
    commits = GroupCommit(db, linger=30.0)  # far beyond the test's time: a wait would show
    async with asyncio.timeout(10):
        assert await commits.run(step(leases[0]))  # alone, after nothing: no wait
    assert commits.transactions == 1

    commits = GroupCommit(db, linger=0.3)
    async with asyncio.timeout(20):
        # A stream: eight at once (one alone, then seven together), then one every 10 ms.
        wave = [asyncio.create_task(commits.run(step(lease))) for lease in leases[1:9]]
        assert await asyncio.gather(*wave) == [True] * 8
        trickle = []
        for lease in leases[9:21]:
            trickle.append(asyncio.create_task(commits.run(step(lease))))
            await asyncio.sleep(0.01)
        assert await asyncio.gather(*trickle) == [True] * 12
    assert commits.units == 20
    # Without the linger each of the twelve, 10 ms apart, would have had a transaction of its
    # own; lingering 0.3 s, they share at most two.
    assert commits.transactions <= 4  # the wave's two, and the twelve in two at most
    async with db.session() as session:
        assert await session.scalar(select(func.count()).select_from(InstanceEvent)) == 21
