"""What an instance costs: billed periods times the rate recorded when each began (pure, no I/O).

What Novita bills (novita-api.md §4.1), and so what is counted here:
- Compute: the instance's price per hour (per-GPU price times `gpuNum`) from the moment it reaches
  `pulling` until it is stopped (`exited`) or removed. The Novita statuses billed are
  `BILLED_STATUSES`; a start bills again from its own `pulling`.
- Container disk beyond the free 60 GB, at $0.005 per GB per day, for the same billed time: its
  data does not survive a stop, so a stopped instance holds no container disk.
Not counted: anything while stopped (the docs bill no storage of a stopped instance: container
and volume disks are released), network volumes and local volume disks (the service creates
neither), monthly subscriptions, taxes and credits.

Novita's status is seen once per status-sync interval, so a period's edges are estimated: a
change seen at `seen_at` happened after the last time the old status was seen (`lower`), and
is placed halfway between (`edge_time`), which keeps the expected error at zero and the
worst error at half an interval per edge.

Each period keeps the rate in force when it began (the price recorded at the create or start
that led to it), so a later price change applies to later periods only, as Novita prices an
instance when it is started.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from enum import StrEnum
from typing import Any

# Novita statuses during which compute is billed (from `pulling` until stopped or removed).
BILLED_STATUSES = frozenset({"pulling", "running", "toStop", "stopping", "toRestart", "restarting"})
FREE_ROOTFS_GB = 60
DISK_USD_PER_GB_DAY = 0.005


def is_billed(novita_status: str | None) -> bool:
    return novita_status in BILLED_STATUSES


def billing_rate(price_per_hour: float | None, rootfs_size: int | None) -> float:
    """USD per hour of a billed instance: its price plus the container disk beyond 60 GB."""
    disk_gb = max(0, (rootfs_size or 0) - FREE_ROOTFS_GB)
    return round((price_per_hour or 0.0) + disk_gb * DISK_USD_PER_GB_DAY / 24, 9)


def edge_time(lower: datetime | None, seen_at: datetime) -> datetime:
    """When a change first seen at `seen_at` most likely happened: halfway from `lower` (the
    last moment the previous status was known to hold), or `seen_at` without one."""
    if lower is None or lower >= seen_at:
        return seen_at
    return lower + (seen_at - lower) / 2


@dataclass(frozen=True)
class Edge:
    """A change of the open period: close it at `closes` and/or open one at `opens`."""

    closes: datetime | None = None
    opens: datetime | None = None


# Statuses of an instance being removed: a delete ends billing when Novita accepts it.
REMOVAL_STATUSES = frozenset({"toRemove", "removing", "removed"})


def billing_edge(
    novita_status: str | None,
    *,
    open_since: datetime | None,
    lower: datetime | None,
    seen_at: datetime,
    removal_accepted_at: datetime | None = None,
) -> Edge | None:
    """The change an observation of `novita_status` at `seen_at` makes to the billed periods,
    or None when billing continues (or stays off) as it was. `removal_accepted_at`: when our
    delete was accepted; a removal seen after it closes the period then, not halfway."""
    billed = is_billed(novita_status)
    if billed and open_since is None:
        return Edge(opens=edge_time(lower, seen_at))
    if not billed and open_since is not None:
        closes = edge_time(lower, seen_at)
        if (
            novita_status in REMOVAL_STATUSES
            and removal_accepted_at is not None
            and removal_accepted_at <= seen_at
        ):
            closes = removal_accepted_at
        return Edge(closes=max(closes, open_since))
    return None


# The open period, carried in the observation from one to the next (domain/observations.py
# keeps what upstream said; these two keys say what it has been costing since).
BILLED_SINCE = "billedSince"
BILLED_RATE = "billedRate"


def open_period(observation: dict[str, Any] | None) -> tuple[datetime | None, float | None]:
    """(start, rate) of the open period an observation carries, or (None, None)."""
    raw = (observation or {}).get(BILLED_SINCE)
    if not isinstance(raw, str):
        return None, None
    try:
        since = datetime.fromisoformat(raw)
    except ValueError:
        return None, None
    rate = (observation or {}).get(BILLED_RATE)
    return since, float(rate) if isinstance(rate, int | float) else 0.0


def latest(*moments: datetime | None) -> datetime | None:
    """The latest of the known moments (a lower bound of an edge), or None."""
    known = [moment for moment in moments if moment is not None]
    return max(known) if known else None


def carry_billing(
    previous: dict[str, Any] | None,
    observation: dict[str, Any],
    *,
    lower: datetime | None,
    seen_at: datetime,
    rate: float,
    removal_accepted_at: datetime | None = None,
) -> tuple[dict[str, Any], Period | None]:
    """`observation` with the open period carried from `previous`, opened (at `rate`) or
    closed; returns it with the period closed now, if any (to be recorded)."""
    since, open_rate = open_period(previous)
    result = {k: v for k, v in observation.items() if k not in (BILLED_SINCE, BILLED_RATE)}
    status = "removed" if observation.get("gone") else observation.get("status")
    edge = billing_edge(
        status,
        open_since=since,
        lower=lower,
        seen_at=seen_at,
        removal_accepted_at=removal_accepted_at,
    )
    if edge is None:
        if since is not None:
            result[BILLED_SINCE] = since.isoformat()
            result[BILLED_RATE] = open_rate
        return result, None
    if edge.opens is not None:
        result[BILLED_SINCE] = edge.opens.isoformat()
        result[BILLED_RATE] = rate
        return result, None
    assert since is not None
    assert edge.closes is not None
    return result, Period(since, edge.closes, open_rate or 0.0)


@dataclass(frozen=True)
class Period:
    """Billed time at one rate (USD per hour); `ended_at` None while still open."""

    started_at: datetime
    ended_at: datetime | None
    rate: float

    def clipped(self, start: datetime | None, end: datetime) -> Period | None:
        """The part within [start, end) (an open period runs until `end`), or None."""
        begin = self.started_at if start is None else max(self.started_at, start)
        finish = min(self.ended_at or end, end)
        if finish <= begin:
            return None
        return Period(begin, finish, self.rate)

    def seconds(self, now: datetime) -> float:
        return max(0.0, ((self.ended_at or now) - self.started_at).total_seconds())

    def cost(self, now: datetime) -> float:
        return self.seconds(now) / 3600 * self.rate


def cost_to_date(
    billed_cost: float,
    billed_seconds: float,
    open_since: datetime | None,
    open_rate: float | None,
    now: datetime,
) -> tuple[float, float]:
    """(USD, billed seconds) to `now`: the closed periods' totals plus the open period."""
    cost, seconds = billed_cost or 0.0, billed_seconds or 0.0
    if open_since is not None:  # `Period(open_since, None, rate)`'s cost and seconds, inline:
        elapsed = max(0.0, (now - open_since).total_seconds())  # every read of a view runs this
        cost += elapsed / 3600 * (open_rate or 0.0)
        seconds += elapsed
    return round(cost, 6), round(seconds, 3)


def cost_reached_at(
    max_cost: float,
    billed_cost: float,
    open_since: datetime | None,
    open_rate: float | None,
) -> datetime | None:
    """When the cost to date reaches `max_cost` at the open period's rate (None: it does not
    grow); a moment in the past when it already has."""
    if open_since is None or not open_rate or open_rate <= 0:
        return None
    left = max(0.0, max_cost - (billed_cost or 0.0))
    return open_since + timedelta(hours=left / open_rate)


class GroupBy(StrEnum):
    DAY = "day"
    INSTANCE = "instance"
    PRODUCT = "product"
    REGION = "region"


@dataclass(frozen=True)
class Billed:
    """A period of one instance, with what the fleet report groups it by."""

    instance_id: str
    name: str
    product: str
    region: str
    period: Period


@dataclass
class CostGroup:
    key: str
    cost: float = 0.0
    billed_seconds: float = 0.0
    instances: set[str] | None = None


def day_pieces(period: Period, now: datetime) -> Iterable[tuple[str, Period]]:
    """The period cut at UTC midnights, each piece with its day (YYYY-MM-DD)."""
    start = period.started_at.astimezone(UTC)
    end = (period.ended_at or now).astimezone(UTC)
    while start < end:
        midnight = datetime.combine(start.date() + timedelta(days=1), time(), tzinfo=UTC)
        piece_end = min(end, midnight)
        yield start.date().isoformat(), Period(start, piece_end, period.rate)
        start = piece_end


def summarize(
    billed: Sequence[Billed],
    *,
    start: datetime | None,
    end: datetime,
    group_by: GroupBy,
) -> list[CostGroup]:
    """Cost and billed time within [start, end) per group, sorted by key (days ascending,
    others by cost, largest first)."""
    groups: dict[str, CostGroup] = {}
    for item in billed:
        part = item.period.clipped(start, end)
        if part is None:
            continue
        if group_by is GroupBy.DAY:
            pieces = list(day_pieces(part, end))
        else:
            key = {
                GroupBy.INSTANCE: item.instance_id,
                GroupBy.PRODUCT: item.product,
                GroupBy.REGION: item.region,
            }[group_by]
            pieces = [(key, part)]
        for key, piece in pieces:
            group = groups.setdefault(key, CostGroup(key, instances=set()))
            group.cost += piece.cost(end)
            group.billed_seconds += piece.seconds(end)
            assert group.instances is not None
            group.instances.add(item.instance_id)
    result = list(groups.values())
    if group_by is GroupBy.DAY:
        result.sort(key=lambda group: group.key)
    else:
        result.sort(key=lambda group: (-group.cost, group.key))
    return result
