"""The cost and time fields of the instance view, from the row's columns at read time.

Cost to date grows while a period is open, so it is computed when the view is rendered (not
stored): the closed periods' totals plus the open period up to now (domain/costs.py). The next
limit comes from domain/limits.py.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from novita_manager.domain.costs import cost_to_date
from novita_manager.domain.limits import Limits, LimitState, next_due
from novita_manager.domain.statuses import Operation, Status


def moment(value: datetime | str | None) -> datetime | None:
    """A timestamp column as a datetime (the SQLite read path gives ISO-8601 text)."""
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(value)


# The columns of `Limits` (a row with none of them has no expiry; most rows).
LIMITS = ("auto_stop_after", "auto_delete_after", "max_cost", "idle_stop_after")


def limits_of(columns: Mapping[str, Any]) -> Limits:
    return Limits(
        auto_stop_after=columns["auto_stop_after"],
        auto_delete_after=columns["auto_delete_after"],
        max_cost=columns["max_cost"],
        idle_stop_after=columns["idle_stop_after"],
    )


def limit_state(columns: Mapping[str, Any]) -> LimitState:
    """What domain.limits needs, from the row's columns (ORM row values or read-path values)."""
    created_at = moment(columns["created_at"])
    assert created_at is not None  # NOT NULL
    operation = columns["operation"]
    return LimitState(
        status=Status(columns["status"]),
        operation=Operation(operation) if operation else None,
        created_at=created_at,
        ready_at=moment(columns["ready_at"]),
        limits=limits_of(columns),
        billed_cost=columns["billed_cost"] or 0.0,
        billing_since=moment(columns["billing_since"]),
        billing_rate=columns["billing_rate"],
        idle_since=moment(columns["idle_since"]),
    )


def costs_and_expiry(
    columns: Mapping[str, Any],
    time: Callable[[datetime | str | None], Any],
    now: datetime | None = None,
) -> dict[str, Any]:
    """`costToDate`, `billedSeconds` and `expiresAt` of the view."""
    now = now or datetime.now(UTC)
    cost, seconds = cost_to_date(
        columns["billed_cost"] or 0.0,
        columns["billed_seconds"] or 0.0,
        moment(columns["billing_since"]),
        columns["billing_rate"],
        now,
    )
    expires = next_expiry(columns)
    return {
        "costToDate": cost,
        "billedSeconds": seconds,
        "expiresAt": None if expires is None else time(expires),
    }


def next_expiry(columns: Mapping[str, Any]) -> datetime | None:
    """When the next limit fires (`expiresAt`); None without one (most rows: no state built)."""
    if all(columns[name] is None for name in LIMITS):  # not `Limits.any()`: nothing to build
        return None
    due = next_due(limit_state(columns), columns["limit_fired"])
    return None if due is None else due.at
