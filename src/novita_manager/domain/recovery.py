"""Spot life, the pure part: reading a reclaim from an observation, and what to do about it.

Novita marks a spot instance it will take back `spotStatus: notified` with `spotReclaimTime`
(novita-api.md §4.3), then `reclaiming`, and finally leaves it `exited` with `spotStatus:
terminated` and the reclaim time kept. The service warns once (`instance.reclaiming`), says when
it is taken (`instance.reclaimed`) and then follows the instance's policy `onReclaim`:

- `none`: nothing more; it rests `stopped` (what happened before this policy existed).
- `restart`: Novita start (Novita refuses a reclaimed node for capacity; the engine then
  migrates, which also starts it).
- `migrate`: Novita migrate: a new node, the same Novita id. Data on the system disk and local
  disk is lost; network volumes are kept.
- `recreate`: delete the reclaimed instance, then create a new one from the same request (a new
  Novita id, the same managed id), in the allowed regions under the price cap.

At most `maxRecoveries` recoveries per managed instance; the next reclaim fails it. Successive
recoveries back off: the first starts at once, the n-th waits `base * 2**(n-2)` (capped) after
the previous one started, so an instance reclaimed again and again does not churn.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any


class OnReclaim(StrEnum):
    NONE = "none"
    RESTART = "restart"
    MIGRATE = "migrate"
    RECREATE = "recreate"


# spotStatus values (novita-api.md §2): told it will be reclaimed, being reclaimed, taken.
NOTICE_STATUSES = frozenset({"notified", "reclaiming"})
TERMINATED = "terminated"


@dataclass(frozen=True)
class SpotSignal:
    """What an observation says about a reclaim."""

    spot_status: str | None
    reclaim_at: datetime | None  # Novita's spotReclaimTime, when set
    noticed: bool  # a reclaim is announced or under way (not yet taken)
    reclaimed: bool  # the instance was taken: exited with a reclaim time or `terminated`


def _time(value: Any) -> datetime | None:
    """ISO text (what the observation keeps) or Unix seconds; "0" and "" mean none."""
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, UTC) if value > 0 else None
    if isinstance(value, str) and value:
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return None
    return None


def spot_signal(observation: dict[str, Any] | None) -> SpotSignal:
    """Read the reclaim fields of an observation (`domain.observations.summarize`)."""
    observation = observation or {}
    spot_status = observation.get("spotStatus") or None
    reclaim_at = _time(observation.get("spotReclaimTime"))
    exited = observation.get("status") == "exited"
    reclaimed = exited and (reclaim_at is not None or spot_status == TERMINATED)
    noticed = not reclaimed and spot_status in NOTICE_STATUSES
    return SpotSignal(spot_status, reclaim_at, noticed, reclaimed)


@dataclass(frozen=True)
class RecoveryPolicy:
    on_reclaim: OnReclaim
    max_recoveries: int
    backoff_base: float  # seconds between the first and the second recovery; doubles after
    backoff_max: float


class Verdict(StrEnum):
    REST = "rest"  # policy none: stay stopped
    RECOVER = "recover"
    GIVE_UP = "give_up"  # maxRecoveries reached


@dataclass(frozen=True)
class RecoveryPlan:
    verdict: Verdict
    mode: OnReclaim | None = None
    not_before: datetime | None = None  # when the recovery may start (backoff)
    number: int = 0  # which recovery this is (1, 2, ...)
    reason: str = ""


def backoff_seconds(policy: RecoveryPolicy, recoveries: int) -> float:
    """Delay before recovery number `recoveries + 1`, counted from the start of the previous."""
    if recoveries <= 0:
        return 0.0
    return float(min(policy.backoff_base * 2 ** (recoveries - 1), policy.backoff_max))


def plan_recovery(
    policy: RecoveryPolicy, recoveries: int, last_recovery_at: datetime | None, now: datetime
) -> RecoveryPlan:
    """What to do about a reclaim, given how many recoveries were made and when the last began."""
    if policy.on_reclaim is OnReclaim.NONE:
        return RecoveryPlan(Verdict.REST, reason="spot instance reclaimed (onReclaim none)")
    if recoveries >= policy.max_recoveries:
        return RecoveryPlan(
            Verdict.GIVE_UP,
            reason=f"spot instance reclaimed again after {recoveries} recoveries "
            f"(maxRecoveries {policy.max_recoveries}); not recovering",
        )
    delay = backoff_seconds(policy, recoveries)
    start = now
    if last_recovery_at is not None and delay > 0:
        start = max(now, last_recovery_at + timedelta(seconds=delay))
    number = recoveries + 1
    return RecoveryPlan(
        Verdict.RECOVER,
        policy.on_reclaim,
        start,
        number,
        f"spot instance reclaimed: recovery {number} of {policy.max_recoveries} "
        f"({policy.on_reclaim.value})",
    )
