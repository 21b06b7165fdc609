"""Limits without I/O: durations, when each limit fires, once per running period, idle stretches
and the reason of a stop."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from novita_manager.domain.limits import (
    Cause,
    Limits,
    LimitState,
    due_limits,
    idle_start,
    next_due,
    parse_duration,
    stop_reason,
)
from novita_manager.domain.statuses import Operation, Status

T0 = datetime(2026, 12, 2, 8, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [(90, 90.0), ("90", 90.0), ("90s", 90.0), ("30m", 1800.0), ("8h", 28800.0), ("2d", 172800.0),
     ("1.5s", 1.5), (" 2m ", 120.0)],
)  # fmt: skip
def test_durations(value: int | str, seconds: float) -> None:
    assert parse_duration(value) == seconds


@pytest.mark.parametrize("value", ["", "1w", "-5", "0", "0s", "367d", "s", "1 h", True])
def test_bad_durations_say_what_is_accepted(value: object) -> None:
    with pytest.raises(ValueError, match=r"duration|more than 0"):
        parse_duration(value)  # type: ignore[arg-type]


def state(status: Status = Status.RUNNING, **changes: object) -> LimitState:
    values: dict[str, object] = {
        "status": status,
        "operation": None,
        "created_at": at(0),
        "ready_at": at(60),
        "limits": Limits(),
    }
    values.update(changes)
    return LimitState(**values)  # type: ignore[arg-type]


def test_the_earliest_limit_comes_first() -> None:
    limits = Limits(auto_stop_after=600, auto_delete_after=3600, max_cost=1.0, idle_stop_after=60)
    running = state(
        limits=limits,
        billed_cost=0.5,
        billing_since=at(50),
        billing_rate=1.0,
        idle_since=at(100),
    )
    due = due_limits(running)
    assert [(d.cause, d.at) for d in due] == [
        (Cause.IDLE, at(160)),
        (Cause.AUTO_STOP, at(660)),
        (Cause.MAX_COST, at(50 + 1800)),
        (Cause.AUTO_DELETE, at(3600)),
    ]
    assert due[0].operation is Operation.STOP
    assert due[-1].operation is Operation.DELETE


def test_idle_counts_from_running_at_the_earliest() -> None:
    due = due_limits(state(limits=Limits(idle_stop_after=60), idle_since=at(0)))
    assert [d.at for d in due] == [at(120)]


def test_a_stopped_instance_keeps_only_its_delete_and_a_busy_one_none_of_its_stops() -> None:
    limits = Limits(auto_stop_after=10, auto_delete_after=3600, max_cost=0.1)
    assert [d.cause for d in due_limits(state(Status.STOPPED, limits=limits))] == [
        Cause.AUTO_DELETE
    ]
    stopping = state(operation=Operation.STOP, limits=limits)
    assert [d.cause for d in due_limits(stopping)] == [Cause.AUTO_DELETE]
    assert due_limits(state(Status.DELETED, limits=limits)) == []


def test_a_limit_fires_once_per_running_period() -> None:
    limits = Limits(auto_stop_after=10)
    first = next_due(state(limits=limits), None)
    assert first is not None
    assert next_due(state(limits=limits), first.marker) is None  # fired for this period
    again = next_due(state(limits=limits, ready_at=at(500)), first.marker)  # started again
    assert again is not None
    assert again.at == at(510)
    assert again.marker != first.marker


def test_idle_stretches() -> None:
    points = [(at(0), 90.0), (at(10), 2.0), (at(20), 1.0), (at(30), 0.0)]
    assert idle_start(points, 5.0) == at(10)
    assert idle_start([*points, (at(40), 50.0)], 5.0) is None
    assert idle_start([], 5.0) is None
    assert idle_start([(at(5), 0.0)], 5.0) == at(5)


def test_the_reason_of_a_stop() -> None:
    assert stop_reason(Operation.STOP, None) is Cause.USER
    assert stop_reason(Operation.STOP, "auto-stop") is Cause.AUTO_STOP
    assert stop_reason(Operation.DELETE, "auto-delete") is Cause.AUTO_DELETE
    assert stop_reason(None, "max-cost") is Cause.UPSTREAM  # no operation of ours led to it
    assert stop_reason(Operation.START, None) is Cause.UPSTREAM
