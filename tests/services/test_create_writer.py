"""Creates written together: one transaction per round, each request's own outcome kept."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.exc import IntegrityError

from novita_manager.services import idempotency
from novita_manager.services.create_writer import CreateWriter, NewInstance
from novita_manager.store.db import Database
from novita_manager.store.models import IdempotencyKey, Instance, InstanceEvent
from novita_manager.store.types import utcnow


def unit(instance_id: str, key: str | None = None) -> NewInstance:
    now = utcnow()
    row = {
        "id": instance_id,
        "name": f"n-{instance_id}",
        "status": "creating",
        "product_name": "RTX 4090 24GB",
        "template_id": "7",
        "gpu_num": 1,
        "rootfs_size": 60,
        "region": "CN-HK-01",
        "billing_mode": "spot",
        "created_at": now,
        "updated_at": now,
    }
    history = {
        "instance_id": instance_id,
        "at": now,
        "from_status": None,
        "to_status": "creating",
        "reason": "requested",
    }
    body = {"instanceId": instance_id}
    key_row = None if key is None else idempotency.key_row(key, "h", instance_id, 201, body)
    return NewInstance(row, history, key_row)


@contextmanager
def commits(db: Database) -> Iterator[list[int]]:
    """Counts the commits of the writer's engine while the block runs."""
    seen: list[int] = []

    def count(_conn: Any) -> None:
        seen.append(1)

    event.listen(db.engine.sync_engine, "commit", count)
    try:
        yield seen
    finally:
        event.remove(db.engine.sync_engine, "commit", count)


async def count_rows(db: Database, model: Any) -> int:
    async with db.read_session() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def test_creates_queued_together_share_one_commit(db: Database) -> None:
    writer = CreateWriter(db)
    with commits(db) as seen:
        outcomes = await asyncio.gather(*(writer.write(unit(f"i{n}")) for n in range(20)))
    assert outcomes == [True] * 20
    assert len(seen) == 1
    assert await count_rows(db, Instance) == 20
    assert await count_rows(db, InstanceEvent) == 20


async def test_a_round_is_at_most_max_round_creates(db: Database) -> None:
    writer = CreateWriter(db, max_round=8)
    with commits(db) as seen:
        await asyncio.gather(*(writer.write(unit(f"i{n}")) for n in range(20)))
    assert len(seen) == 3  # 8 + 8 + 4
    assert await count_rows(db, Instance) == 20


async def test_a_key_taken_loses_and_writes_nothing(db: Database) -> None:
    writer = CreateWriter(db)
    assert await writer.write(unit("first", key="k1"))
    same_round = await asyncio.gather(
        writer.write(unit("again", key="k1")),  # stored by an earlier request
        writer.write(unit("a", key="k2")),
        writer.write(unit("b", key="k2")),  # the same key twice in one round: the first wins
        writer.write(unit("c")),
    )
    assert list(same_round) == [False, True, False, True]
    async with db.read_session() as session:
        ids = set(await session.scalars(select(Instance.id)))
        pairs = await session.execute(select(IdempotencyKey.key, IdempotencyKey.instance_id))
        keys = {key: instance for key, instance in pairs}
    assert ids == {"first", "a", "c"}
    assert keys == {"k1": "first", "k2": "a"}


async def test_a_bad_row_fails_its_own_request_only(db: Database) -> None:
    writer = CreateWriter(db)
    assert await writer.write(unit("taken"))
    results = await asyncio.gather(
        writer.write(unit("good-1")),
        writer.write(unit("taken")),  # the same primary key: a constraint breaks
        writer.write(unit("good-2", key="k")),
        return_exceptions=True,
    )
    assert results[0] is True
    assert results[2] is True
    assert isinstance(results[1], IntegrityError)
    async with db.read_session() as session:
        ids = set(await session.scalars(select(Instance.id)))
    assert ids == {"taken", "good-1", "good-2"}
    assert await count_rows(db, IdempotencyKey) == 1


async def test_a_create_cancelled_before_its_round_writes_nothing(db: Database) -> None:
    writer = CreateWriter(db)
    kept = asyncio.ensure_future(writer.write(unit("kept")))
    dropped = asyncio.ensure_future(writer.write(unit("dropped")))
    await asyncio.sleep(0)  # both queued; the round has not begun
    dropped.cancel()
    assert await kept is True
    with pytest.raises(asyncio.CancelledError):
        await dropped
    async with db.read_session() as session:
        assert set(await session.scalars(select(Instance.id))) == {"kept"}


async def test_close_writes_what_is_queued_then_refuses(db: Database) -> None:
    writer = CreateWriter(db)
    queued = [asyncio.ensure_future(writer.write(unit(f"q{n}"))) for n in range(5)]
    await asyncio.sleep(0)
    await writer.close()
    assert [await q for q in queued] == [True] * 5
    with pytest.raises(RuntimeError, match="shutting down"):
        await writer.write(unit("late"))
    assert await count_rows(db, Instance) == 5
