"""The claim (engine/claim.py) on SQLite and PostgreSQL: one statement, its order, its tokens,
and claims at once taking disjoint rows."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import String, event
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from novita_manager.engine.claim import claim_statement
from novita_manager.store.db import Database
from novita_manager.store.models import LeasedMixin
from tests.engine.items import (
    Item,
    counting_handler,
    create_items_table,
    insert_items,
    load_items,
)
from tests.engine.test_pipeline import make


@pytest.fixture
async def items_db(db: Database) -> Database:
    await create_items_table(db)
    return db


async def test_a_claim_is_one_statement_in_claim_order_with_a_token_per_row(
    items_db: Database,
) -> None:
    """One UPDATE ... RETURNING claims (no SELECT and executemany of leases beside it); the rows
    come back first-class first, then by due time, each with its own token (engine/leases.py
    keys checked and released leases by token)."""
    await insert_items(items_db, 3, prefix="old", due_in=-30, kind="a")
    await insert_items(items_db, 2, prefix="urgent", due_in=-1, kind="b")
    await insert_items(items_db, 1, prefix="older", due_in=-60, kind="a")
    pipeline = make(items_db, counting_handler(items_db, "me"), workers=4, first=Item.kind == "b")
    statements: list[str] = []

    def seen(_c: object, _cur: object, statement: str, *_rest: object) -> None:
        statements.append(statement.lstrip().split(None, 1)[0].upper())

    event.listen(items_db.engine.sync_engine, "before_cursor_execute", seen)
    try:
        claimed = await pipeline._claim(4)
    finally:
        event.remove(items_db.engine.sync_engine, "before_cursor_execute", seen)
    assert [statement for statement in statements if statement != "BEGIN"] == ["UPDATE"]
    ids = [row.id for _, row in claimed]
    assert set(ids[:2]) == {"urgent00000", "urgent00001"}  # due at the same time: either order
    assert ids[2] == "older00000"
    assert ids[3].startswith("old0")
    tokens = [lease.token for lease, _ in claimed]
    assert len(set(tokens)) == 4
    stored = await load_items(items_db)
    assert all(stored[lease.row_id].lock_token == lease.token for lease, _ in claimed)
    assert sum(item.lock_token is None for item in stored.values()) == 2


async def test_claims_at_once_take_disjoint_rows(items_db: Database) -> None:
    """Two pipelines (two replicas' worth) claiming at the same moment: on PostgreSQL the chosen
    rows are locked `SKIP LOCKED`, so neither waits for the other nor takes its rows."""
    await insert_items(items_db, 40)
    handler = counting_handler(items_db, "me")
    first = make(items_db, handler, workers=16, owner="one")
    second = make(items_db, handler, workers=16, owner="two")
    claims = await asyncio.gather(first._claim(16), second._claim(16))
    ids = [[lease.row_id for lease, _ in claimed] for claimed in claims]
    assert [len(taken) for taken in ids] == [16, 16]
    assert not set(ids[0]) & set(ids[1])
    stored = await load_items(items_db)
    owners = {item.lock_owner for row_id, item in stored.items() if row_id in ids[1]}
    assert owners == {"two"}
    assert sum(item.lock_token is None for item in stored.values()) == 8


def test_a_token_that_cannot_fit_its_column_is_refused_when_the_claim_is_built() -> None:
    """The token is a 16-character prefix and the row's id; a table whose ids could overflow
    `lock_token` (64) is refused up front instead of failing its first claim on PostgreSQL."""

    class Base(DeclarativeBase):
        pass

    class WideIds(LeasedMixin, Base):
        __tablename__ = "engine_test_wide_ids"
        id: Mapped[str] = mapped_column(String(60), primary_key=True)

    with pytest.raises(ValueError, match="lock_token"):
        claim_statement(WideIds, WideIds.id.is_not(None), None, owner="me", dialect="postgresql")
    statement = claim_statement(Item, Item.id.is_not(None), None, owner="me", dialect="sqlite")
    assert statement is not None
