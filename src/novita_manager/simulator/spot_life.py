"""Spot life in the simulator: reclaims with a notice (now or scheduled), capacity that changes
over time, and a record of how many live instances each managed instance has.

- A reclaim gives notice first: `spotStatus: notified` with `spotReclaimTime` = now + lead time,
  then `reclaiming`, then the instance is `exited` with `spotStatus: terminated` (novita-api.md
  §4.3). The lead time is `SimulatorConfig.reclaim_lead` (simulated seconds, scaled by
  `time_scale`) unless a reclaim names its own.
- Scheduled work (reclaims, capacity changes) is kept with the simulator-clock moment it is due
  and applied lazily, at that moment, by the next request that reads or changes instances
  (`tick`), like every other status here: nothing runs in the background.
- The live record: an instance is *live* from its create until it is deleted (a delete makes it
  `toRemove` at once; removed instances are not billed). At every create and delete the number of
  live instances carrying each marker (the env var `NOVITA_MANAGER_ID` the service puts on every
  instance it creates) is recorded; `maxLive` is the most any marker ever had, so a test can
  assert that one managed instance never had two.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from novita_manager.simulator.capacity import CapacityLimits
from novita_manager.simulator.config import SPOT_RECLAIMING
from novita_manager.simulator.errors import SimulatorError, invalid_param, invalid_state_change
from novita_manager.simulator.instance_reads import InstanceReads
from novita_manager.simulator.instances import Instance, Step

# The service's marker env var (novita/create_request.MARKER_ENV; the simulator imports nothing
# of the service).
MARKER_ENV = "NOVITA_MANAGER_ID"


@dataclass(frozen=True)
class ScheduledReclaim:
    at: float  # simulator clock
    instance_id: str
    lead: float | None  # simulated seconds; None: the configured lead


@dataclass(frozen=True)
class ScheduledCapacity:
    at: float
    product_id: str | None
    cluster_id: str | None
    available: int | None


def marker_of(instance: Instance) -> str | None:
    return next(
        (env.get("value") for env in instance.request.envs if env.get("key") == MARKER_ENV), None
    )


class SpotLife(CapacityLimits, InstanceReads):
    """Reclaims, scheduled capacity and the live record (state set by `reset_spot_life`)."""

    reclaims: list[ScheduledReclaim]
    capacity_changes: list[ScheduledCapacity]
    live: dict[str, set[str]]  # marker -> live instance ids
    max_live: dict[str, int]
    live_moments: int
    reclaimed_count: int

    def reset_spot_life(self) -> None:
        self.reclaims = []
        self.capacity_changes = []
        self.live = {}
        self.max_live = {}
        self.live_moments = 0
        self.reclaimed_count = 0

    # ---- the live record ----

    def _record_live(self, instance: Instance, alive: bool) -> None:
        marker = marker_of(instance)
        if marker is None:
            return
        ids = self.live.setdefault(marker, set())
        if alive:
            ids.add(instance.id)
        else:
            ids.discard(instance.id)
        self.live_moments += 1
        self.max_live[marker] = max(self.max_live.get(marker, 0), len(ids))

    def live_json(self) -> dict[str, Any]:
        return {
            "live": {marker: len(ids) for marker, ids in self.live.items()},
            "maxLive": dict(self.max_live),
            "moments": self.live_moments,
            "reclaimed": self.reclaimed_count,
        }

    # ---- reclaims ----

    def _lead(self, lead: float | None) -> float:
        return (self.config.reclaim_lead if lead is None else lead) * self.config.time_scale

    def _begin_reclaim(self, instance: Instance, at: float, lead: float | None) -> None:
        grace = self._lead(lead)
        instance.replan(
            at,
            (
                Step("running", grace, "notified"),
                Step("stopping", SPOT_RECLAIMING * self.config.time_scale, "reclaiming"),
                Step("exited", None, "terminated"),
            ),
        )
        instance.spot_reclaim_time = max(int(at + grace), 1)
        instance.touch()
        self.reclaimed_count += 1

    def reclaim(
        self, instance_id: str, lead: float | None = None, after: float | None = None
    ) -> dict[str, Any]:
        """Reclaim a running spot instance now, or `after` simulated seconds (scheduled)."""
        if lead is not None and lead < 0:
            raise invalid_param("leadTime", "must be >= 0")
        now = self.clock()
        self.tick(now)
        instance = self._live(instance_id, now)
        if not instance.is_spot:
            raise SimulatorError(400, "REQUEST", "not a spot instance", {"instanceId": instance.id})
        if after is not None and after > 0:
            at = now + after * self.config.time_scale
            self.reclaims.append(ScheduledReclaim(at, instance.id, lead))
            return {"instanceId": instance.id, "scheduledAt": at}
        status = instance.status(now)
        if status != "running" or instance.spot_status(now) != "running":
            raise invalid_state_change(instance.id, status, "reclaim")
        self._begin_reclaim(instance, now, lead)
        return {"instanceId": instance.id, "state": instance.status(now)}

    def schedule_capacity(
        self, product_id: str | None, cluster_id: str | None, available: int | None, after: float
    ) -> None:
        """Change a capacity limit `after` simulated seconds from now."""
        self.set_capacity(product_id, cluster_id, self._current(product_id, cluster_id))
        at = self.clock() + after * self.config.time_scale
        self.capacity_changes.append(ScheduledCapacity(at, product_id, cluster_id, available))

    def _current(self, product_id: str | None, cluster_id: str | None) -> int | None:
        """The limit in force for this key (validates the names; None: no limit)."""
        cluster = self.catalogue.cluster(cluster_id) if cluster_id else None
        key = (product_id or None, cluster.id if cluster else (cluster_id or None))
        return self.capacity.get(key)

    def tick(self, now: float) -> None:
        """Apply the scheduled reclaims and capacity changes due by `now`, in time order."""
        if self.capacity_changes and min(c.at for c in self.capacity_changes) <= now:
            due = sorted((c for c in self.capacity_changes if c.at <= now), key=lambda c: c.at)
            self.capacity_changes = [c for c in self.capacity_changes if c.at > now]
            for change in due:
                self.set_capacity(change.product_id, change.cluster_id, change.available)
        if not self.reclaims or min(r.at for r in self.reclaims) > now:
            return
        due_reclaims = sorted((r for r in self.reclaims if r.at <= now), key=lambda r: r.at)
        self.reclaims = [r for r in self.reclaims if r.at > now]
        for reclaim in due_reclaims:
            instance = self.active.get(reclaim.instance_id)
            # A reclaim due while the instance was not running (stopped, being reclaimed,
            # removed) is dropped: Novita takes back running nodes only.
            if (
                instance is not None
                and instance.id not in self.removing
                and instance.plan_start <= reclaim.at
                and instance.status(reclaim.at) == "running"
                and instance.spot_status(reclaim.at) == "running"
            ):
                self._begin_reclaim(instance, reclaim.at, reclaim.lead)
