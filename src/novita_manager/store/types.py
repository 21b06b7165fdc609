"""Column types that behave the same on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, Dialect, TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on both dialects (SQLite has no time zones)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTCDateTime column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def bind_processor(self, dialect: Dialect) -> Callable[[Any], Any] | None:
        """On SQLite, `process_bind_param` and SQLite's own DATETIME formatting in one step:
        the text SQLAlchemy stores ("2026-12-03 09:00:00.000000"), from `isoformat`. The two
        steps, a `%` format of a dict per value, were a tenth of a burst's executemany (py-spy,
        `bench.burst`)."""
        if dialect.name != "sqlite":
            return _aware_utc if dialect.name == "postgresql" else super().bind_processor(dialect)

        def process(value: datetime | None) -> str | None:
            if value is None:
                return None
            if value.tzinfo is None:
                raise ValueError("naive datetime given to a UTCDateTime column")
            if value.tzinfo is not UTC:
                value = value.astimezone(UTC)
            return value.replace(tzinfo=None).isoformat(" ", "microseconds")

        return process

    def result_processor(self, dialect: Dialect, coltype: object) -> Callable[[Any], Any] | None:
        """On SQLite, SQLite's DATETIME parsing (`fromisoformat`) and `process_result_value` in
        one step, as the bind: claims load a score of datetime columns per row."""
        if dialect.name != "sqlite":
            if dialect.name == "postgresql":
                return _aware_utc
            return super().result_processor(dialect, coltype)
        parse = datetime.fromisoformat

        def process(value: str | None) -> datetime | None:
            if value is None:
                return None
            parsed = parse(value)
            return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)

        return process

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _aware_utc(value: datetime | None) -> datetime | None:
    """PostgreSQL's bind and result in one step: asyncpg takes and gives aware datetimes (in
    UTC, `timestamptz`), so a value already in UTC passes as it is. `astimezone` on every value
    made a new object each time: a claim loads a dozen per row."""
    if value is None:
        return None
    zone = value.tzinfo
    if zone is UTC:
        return value
    if zone is None:
        raise ValueError("naive datetime given to a UTCDateTime column")
    return value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)
