"""A test-only processed table and a handler that counts its effect, shared by the engine tests
and the engine subprocess (`engine_proc.py`)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta

from sqlalchemy import Integer, MetaData, String, select
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from novita_manager.engine.leases import Lease, write_with_lease
from novita_manager.store.db import Database
from novita_manager.store.models import LeasedMixin
from novita_manager.store.types import utcnow


class ItemsBase(DeclarativeBase):
    metadata = MetaData()


class Item(LeasedMixin, ItemsBase):
    """`done` counts how many times the step's result was committed: exactly once is 1."""

    __tablename__ = "engine_test_items"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    kind: Mapped[str] = mapped_column(String(20), default="a")
    done: Mapped[int] = mapped_column(Integer, default=0)
    processed_by: Mapped[str | None] = mapped_column(String(100))
    value: Mapped[str | None] = mapped_column(String(100))


async def create_items_table(db: Database) -> None:
    async with db.engine.begin() as conn:
        await conn.run_sync(ItemsBase.metadata.create_all)


async def insert_items(
    db: Database, count: int, *, prefix: str = "r", due_in: float = 0.0, kind: str = "a"
) -> list[str]:
    ids = [f"{prefix}{i:05d}" for i in range(count)]
    due = utcnow() + timedelta(seconds=due_in)
    async with db.session() as session, session.begin():
        session.add_all(Item(id=i, kind=kind, next_attempt_at=due, attempts=0) for i in ids)
    return ids


async def load_items(db: Database) -> dict[str, Item]:
    async with db.session() as session:
        return {item.id: item for item in (await session.scalars(select(Item))).all()}


def counting_handler(
    db: Database,
    who: str,
    delay: float = 0.0,
    on_done: Callable[[str, bool], None] | None = None,
) -> Callable[[Lease, Item], Awaitable[None]]:
    """A step: 'upstream work' outside any transaction, then its result under the lease."""

    async def handle(lease: Lease, row: Item) -> None:
        if delay:
            await asyncio.sleep(delay)
        async with db.session() as session, session.begin():
            held = await write_with_lease(
                session,
                Item,
                lease,
                {"done": Item.done + 1, "processed_by": who, "next_attempt_at": None},
                release=True,
            )
            if not held:
                await session.rollback()
        if on_done is not None:
            on_done(row.id, held)

    return handle
