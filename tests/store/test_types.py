"""`UTCDateTime`: the one-step bind and result (SQLite, PostgreSQL) give what SQLAlchemy's two
steps gave, and values come back as the same aware UTC instants."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import Column, DateTime, Integer, MetaData, Table, TypeDecorator, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import create_async_engine

from novita_manager.store.types import UTCDateTime


class TwoSteps(TypeDecorator[datetime]):
    """UTCDateTime as it was: its own step, and SQLite's DATETIME formatting or parsing."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> Any:
        return None if value is None else value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def instants(count: int) -> list[datetime]:
    rng = random.Random(15)
    zones = [UTC, timezone(timedelta(hours=-7)), timezone(timedelta(hours=5, minutes=30))]
    values = [
        datetime(1, 1, 2, tzinfo=UTC),
        datetime(9999, 12, 30, 23, 59, 59, 999999, tzinfo=UTC),
        datetime(2026, 12, 3, 9, 0, tzinfo=UTC),  # no microseconds: still written out
    ]
    for _ in range(count):
        value = datetime.fromtimestamp(rng.uniform(0, 4e9), tz=rng.choice(zones))
        values.append(value.replace(microsecond=rng.choice([0, rng.randrange(1_000_000)])))
    return values


def test_the_sqlite_bind_writes_what_the_two_steps_wrote() -> None:
    dialect = sqlite.dialect()
    one = UTCDateTime().dialect_impl(dialect).bind_processor(dialect)
    two = TwoSteps().dialect_impl(dialect).bind_processor(dialect)
    assert one is not None
    assert two is not None
    for value in instants(20_000):
        assert one(value) == two(value), value
    assert one(None) is None
    assert one(datetime(2026, 12, 3, 9, 0, tzinfo=UTC)) == "2026-12-03 09:00:00.000000"
    with pytest.raises(ValueError, match="naive"):
        one(datetime(2026, 12, 3, 9, 0))


def test_the_sqlite_result_reads_what_the_two_steps_read() -> None:
    dialect = sqlite.dialect()
    one = UTCDateTime().dialect_impl(dialect).result_processor(dialect, None)
    two = TwoSteps().dialect_impl(dialect).result_processor(dialect, None)
    assert one is not None
    assert two is not None
    stored = [
        "2026-12-03 09:00:00.000000",
        "2026-12-03 09:00:00",  # SQLite's CURRENT_TIMESTAMP
        "2026-12-03 09:00:00.123",  # strftime('%f')
        "2026-12-03T09:00:00+05:30",
        "0001-01-02 00:00:00.000000",
    ]
    for text in stored:
        value = one(text)
        assert value == two(text), text
        assert value is not None
        assert value.tzinfo is UTC
    assert one(None) is None


class TwoStepsAware(TwoSteps):
    """UTCDateTime's PostgreSQL steps as they were: aware UTC both ways (asyncpg's own)."""

    def process_bind_param(self, value: datetime | None, dialect: Any) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTCDateTime column")
        return value.astimezone(UTC)


def test_the_postgresql_bind_and_result_give_what_the_two_steps_gave() -> None:
    dialect = postgresql.asyncpg.dialect()  # type: ignore[attr-defined,no-untyped-call]
    for kind in ("bind", "result"):
        if kind == "bind":
            one = UTCDateTime().dialect_impl(dialect).bind_processor(dialect)
            two = TwoStepsAware().dialect_impl(dialect).bind_processor(dialect)
        else:
            one = UTCDateTime().dialect_impl(dialect).result_processor(dialect, None)
            two = TwoStepsAware().dialect_impl(dialect).result_processor(dialect, None)
        assert one is not None
        assert two is not None
        for value in instants(5_000):
            got = one(value)
            assert got == two(value), value
            assert got.tzinfo is UTC
        assert one(None) is None
    bind = UTCDateTime().dialect_impl(dialect).bind_processor(dialect)
    assert bind is not None
    with pytest.raises(ValueError, match="naive"):
        bind(datetime(2026, 12, 3, 9, 0))


async def test_values_come_back_as_the_same_utc_instants(database_url: str) -> None:
    """On both dialects (`database_url`: a SQLite file or a fresh PostgreSQL database)."""
    table = Table(
        "t", MetaData(), Column("id", Integer, primary_key=True), Column("at", UTCDateTime())
    )
    engine = create_async_engine(database_url)
    values = instants(200)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(table.metadata.create_all)
            await connection.execute(
                table.insert(), [{"id": i, "at": value} for i, value in enumerate(values)]
            )
            rows = (await connection.execute(select(table.c.at).order_by(table.c.id))).all()
    finally:
        await engine.dispose()
    assert [at for (at,) in rows] == values  # equal instants, whatever zone they were given in
    assert {at.tzinfo for (at,) in rows} == {UTC}
