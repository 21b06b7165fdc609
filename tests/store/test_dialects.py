"""`insert_for` (store/dialects.py): each database's INSERT ... ON CONFLICT, and PostgreSQL's
dialect package imported only when a PostgreSQL database asks for it."""

from __future__ import annotations

from typing import Any, cast

import pytest
from sqlalchemy import CursorResult, select

from novita_manager.store.db import Database
from novita_manager.store.dialects import insert_for
from novita_manager.store.models import ServiceLease
from novita_manager.store.types import utcnow
from tests.fixtures.fresh_python import run_fresh


async def test_a_conflicting_insert_does_nothing_on_both_databases(db: Database) -> None:
    insert = insert_for(db.dialect)
    rowcounts = []
    for owner in ("first", "second"):
        values = {"name": "dialects", "owner": owner, "token": owner, "expires_at": utcnow()}
        statement = insert(ServiceLease).values(values)
        async with db.session() as session, session.begin():
            result = await session.execute(
                statement.on_conflict_do_nothing(index_elements=["name"])
            )
            rowcounts.append(cast(CursorResult[Any], result).rowcount)
    assert rowcounts == [1, 0]
    async with db.session() as session:
        owners = (await session.scalars(select(ServiceLease.owner))).all()
    assert owners == ["first"]


def test_another_dialect_is_refused() -> None:
    with pytest.raises(ValueError, match="mysql"):
        insert_for("mysql")


def test_the_sqlite_insert_leaves_postgresql_unimported() -> None:
    code = (
        "import sys\n"
        "from novita_manager.store.dialects import insert_for\n"
        "from novita_manager.store.models import ServiceLease\n"
        "insert_for('sqlite')(ServiceLease)\n"
        "print('sqlalchemy.dialects.postgresql' in sys.modules)\n"
        "insert_for('postgresql')(ServiceLease)\n"
        "print('sqlalchemy.dialects.postgresql' in sys.modules)\n"
    )
    assert run_fresh(code).split() == ["False", "True"]
