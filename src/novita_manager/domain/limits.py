"""Time and money limits of an instance: when each fires, and why an instance stopped (pure).

Per instance (on create, defaulting to configuration):
- `autoStopAfter`: stop this long after the instance (last) reached `running`;
- `autoDeleteAfter`: delete this long after the instance was requested, whatever its state;
- `maxCost`: stop when the cost to date reaches this many USD (domain/costs.py);
- `idleStopAfter`: stop once Novita's GPU utilisation has stayed below the idle threshold this
  long while running.

Each limit fires at most once for what it limits: a stop once per running period (a user who
starts the instance again gets a fresh period: the timers count again, and a budget already
spent stops it again at once), the delete once. The marker of what fired (`marker`) is stored
with the row, so a restart of the service does not fire it twice.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from novita_manager.domain.costs import cost_reached_at
from novita_manager.domain.statuses import Operation, Status


class Cause(StrEnum):
    """Why an instance was stopped or deleted: the `reason` of `instance.stopped` and
    `instance.deleted`, and the cause of an operation request."""

    USER = "user"
    UPSTREAM = "upstream"
    AUTO_STOP = "auto-stop"
    AUTO_DELETE = "auto-delete"
    MAX_COST = "max-cost"
    IDLE = "idle"


LIMIT_OPERATION = {
    Cause.AUTO_STOP: Operation.STOP,
    Cause.AUTO_DELETE: Operation.DELETE,
    Cause.MAX_COST: Operation.STOP,
    Cause.IDLE: Operation.STOP,
}

# Where an auto-delete applies: any status but deleting and deleted (a delete supersedes an
# operation under way, domain/requests.py).
DELETABLE = frozenset(
    {
        Status.CREATING,
        Status.STARTING,
        Status.RUNNING,
        Status.STOPPING,
        Status.STOPPED,
        Status.FAILED,
    }
)

DURATION_PATTERN = r"^[0-9]+(\.[0-9]+)?[smhd]?$"
_DURATION = re.compile(DURATION_PATTERN)
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86_400}
MAX_DURATION = 366 * 86_400.0


def parse_duration(value: int | float | str) -> float:
    """Seconds from `90`, `"90"`, `"90s"`, `"30m"`, `"8h"` or `"2d"` (fractions allowed).

    Raises ValueError naming what is accepted."""
    if isinstance(value, bool):
        raise ValueError("must be a number of seconds or a duration such as 90s, 30m, 8h, 2d")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        text = value.strip()
        if not _DURATION.match(text):
            raise ValueError("must be a number of seconds or a duration such as 90s, 30m, 8h, 2d")
        unit = text[-1] if text[-1] in _UNIT else "s"
        seconds = float(text.rstrip("smhd")) * _UNIT[unit]
    if not 0 < seconds <= MAX_DURATION:
        raise ValueError("must be more than 0 and at most 366 days")
    return seconds


@dataclass(frozen=True)
class Limits:
    auto_stop_after: float | None = None
    auto_delete_after: float | None = None
    max_cost: float | None = None
    idle_stop_after: float | None = None

    def any(self) -> bool:
        return any(
            value is not None
            for value in (
                self.auto_stop_after,
                self.auto_delete_after,
                self.max_cost,
                self.idle_stop_after,
            )
        )


@dataclass(frozen=True)
class LimitState:
    """What the limits of one instance depend on."""

    status: Status
    operation: Operation | None
    created_at: datetime
    ready_at: datetime | None  # when it last reached running
    limits: Limits
    billed_cost: float = 0.0
    billing_since: datetime | None = None
    billing_rate: float | None = None
    idle_since: datetime | None = None


@dataclass(frozen=True)
class Due:
    cause: Cause
    at: datetime
    marker: str  # identifies what fires: the cause and the period it limits

    @property
    def operation(self) -> Operation:
        return LIMIT_OPERATION[self.cause]


def _marker(cause: Cause, period_start: datetime) -> str:
    return f"{cause.value}@{period_start.isoformat()}"


def due_limits(state: LimitState) -> list[Due]:
    """Every limit that will fire for the instance as it is, earliest first."""
    limits = state.limits
    due: list[Due] = []
    if limits.auto_delete_after is not None and state.status in DELETABLE:
        at = state.created_at + timedelta(seconds=limits.auto_delete_after)
        due.append(Due(Cause.AUTO_DELETE, at, _marker(Cause.AUTO_DELETE, state.created_at)))
    running = state.status is Status.RUNNING and state.operation is None
    if running and state.ready_at is not None:
        period = state.ready_at
        if limits.auto_stop_after is not None:
            at = period + timedelta(seconds=limits.auto_stop_after)
            due.append(Due(Cause.AUTO_STOP, at, _marker(Cause.AUTO_STOP, period)))
        if limits.idle_stop_after is not None and state.idle_since is not None:
            at = max(state.idle_since, period) + timedelta(seconds=limits.idle_stop_after)
            due.append(Due(Cause.IDLE, at, _marker(Cause.IDLE, period)))
        if limits.max_cost is not None:
            reached = cost_reached_at(
                limits.max_cost, state.billed_cost, state.billing_since, state.billing_rate
            )
            if reached is not None:
                due.append(Due(Cause.MAX_COST, reached, _marker(Cause.MAX_COST, period)))
    due.sort(key=lambda item: item.at)
    return due


def next_due(state: LimitState, fired: str | None) -> Due | None:
    """The next limit to fire (skipping the one whose marker already fired), or None."""
    return next((item for item in due_limits(state) if item.marker != fired), None)


def idle_start(points: list[tuple[datetime, float]], threshold: float) -> datetime | None:
    """When the trailing stretch of readings below `threshold` (percent) began; None when
    the latest reading is not idle or there is none."""
    start: datetime | None = None
    for at, value in sorted(points):
        start = (start or at) if value < threshold else None
    return start


def stop_reason(operation: Operation | None, cause: str | None) -> Cause:
    """The `reason` of `instance.stopped`/`instance.deleted`: the cause of the request the
    operation served, or `upstream` when no operation of ours led to it."""
    if operation not in (Operation.STOP, Operation.DELETE):
        return Cause.UPSTREAM
    try:
        return Cause(cause) if cause else Cause.USER
    except ValueError:
        return Cause.USER
