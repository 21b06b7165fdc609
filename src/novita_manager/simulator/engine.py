"""The simulation engine: catalogue reads, instance actions, capacity and billing, no HTTP.

Choices where novita-api.md leaves room (documented for the client's authors):
- Unknown `productId` or `clusterId` on create: 400 `RESOURCE_NOT_FOUND`.
- Product not offered in the cluster, not deployable, out of stock, too many GPUs, or capacity
  exhausted: 400 `INSUFFICIENT_RESOURCE` (or, under the reading `capacity_error: message`,
  `FAILED_PRECONDITION` with the message saying it). Spot/monthly on a product without it:
  400 `UNSUPPORTED_BILLING_MODE`.
- Unknown instance (or one whose removal finished): 404 `RESOURCE_NOT_FOUND`, "instance not
  found". Transition not allowed: 400 `INVALID_STATE_CHANGE`, "invalid state change".
- Allowed transitions: start from `exited` (a reclaimed spot instance refuses with
  `INSUFFICIENT_RESOURCE`: migrate it); stop from `pulling`, `running`, `starting` or
  `restarting`; restart from `running`; migrate from `running` or `exited`; delete from any
  state (repeating it while removing is accepted and changes nothing).
- A failed instance (`/_simulator/instances/{id}/fail`) ends `exited` with `statusError`; the
  next start clears `statusError`.
- Listing order is newest first. `pageSize` 0 or absent means 10; above 500 is capped at 500.

Readings (config.py, docs/simulator.md) change answers where Novita's docs are ambiguous: the
first `pageNum`, a silent `pageSize` cap, list items' shape, `node`'s shape, the default
`billingMethod` of /products, product ids spanning clusters, how a capacity refusal is told,
transient `statusError`, whether Jupyter needs the create's `tools`, and the name rule.

The engine is plain Python (no HTTP) assembled from parts: capacity.py (limits and refusals),
catalogue_reads.py, instance_reads.py (get and listings), instance_actions.py (the state
machine); engine_state.py declares the state they share. This module holds the simulator's
own lifecycle: reset, configuration, readings and the clock's offset (advance_clock).
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Mapping
from typing import Any

from novita_manager.simulator.catalogue import build_catalogue
from novita_manager.simulator.catalogue_reads import CatalogueReads
from novita_manager.simulator.config import SPOT_RECLAIM_GRACE, ReadingError, SimulatorConfig
from novita_manager.simulator.errors import invalid_param
from novita_manager.simulator.instance_actions import InstanceActions
from novita_manager.simulator.usage import Usage


class Simulator(InstanceActions, CatalogueReads, Usage):
    """All simulated state of one Novita account. Not thread-safe: drive it from one loop."""

    def __init__(self, config: SimulatorConfig, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.wall_clock = clock
        self.clock_offset = 0.0  # clock seconds added by advance_clock, until the next reset
        self.clock = self._simulated_now  # what every part reads: plans, billing, spot life
        self.reset()

    def _simulated_now(self) -> float:
        return self.wall_clock() + self.clock_offset

    def advance_clock(self, seconds: float) -> float:
        """Move the simulated clock `seconds` simulated seconds (scaled by the time scale, like
        every status step) forward for everything at once: each instance's plan, billing and
        the scheduled spot life read this clock. Lets tests and benchmarks reach a timeout or
        a burst without waiting. Answers the offset in force, in clock seconds."""
        if not math.isfinite(seconds) or seconds < 0:
            raise invalid_param("advance", "must be a finite number >= 0")
        self.clock_offset += seconds * self.config.time_scale
        return self.clock_offset

    # ---- lifecycle of the simulator itself ----

    def reset(
        self,
        seed: int | None = None,
        autostart: bool | None = None,
        time_scale: float | None = None,
        profile: str | None = None,
        readings: Mapping[str, Any] | None = None,
    ) -> None:
        """Forget every instance and capacity limit; reseed (same seed unless one is given).

        With `profile` or `readings`, switch readings first (nothing changes if they are
        invalid); without them the readings in force stay."""
        if profile is not None or readings is not None:
            self.set_profile(profile, readings)
        if seed is not None:
            self.config.seed = seed
        self.configure(autostart=autostart, time_scale=time_scale)
        self.rng = random.Random(self.config.seed)
        self.catalogue = build_catalogue(self.config.seed)
        self.instances = {}  # every instance ever created
        self.active = {}  # not yet removed, oldest first
        self.removing = set()  # deleted, removal not finished yet
        self.capacity = {}
        self.config.reclaim_lead = SPOT_RECLAIM_GRACE  # a reset forgets a lead set by /config
        self.reset_spot_life()
        self.instances_created = 0
        self.clock_offset = 0.0  # back to the wall clock (no instance is left to go back on)

    def configure(
        self,
        autostart: bool | None = None,
        time_scale: float | None = None,
        reclaim_lead: float | None = None,
    ) -> None:
        """Change behaviour for later actions; plans already under way keep their timing."""
        if autostart is not None:
            self.config.autostart = autostart
        if reclaim_lead is not None:
            if reclaim_lead < 0:
                raise invalid_param("reclaimLeadTime", "must be >= 0")
            self.config.reclaim_lead = reclaim_lead
        if time_scale is not None:
            if time_scale < 0:
                raise invalid_param("timeScale", "must be >= 0")
            self.config.time_scale = time_scale

    def set_profile(
        self, profile: str | None = None, readings: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """Play `profile` (default: the one in force) with `readings` overriding it.

        Later answers follow the new readings at once, existing instances included; plans
        already under way keep their steps. 400 VALIDATOR_PARAM on an unknown profile or
        reading, or a value a reading does not take."""
        try:
            self.config.use_profile(profile or self.config.profile, readings)
        except ReadingError as exc:
            raise invalid_param(exc.field, exc.message) from None
        return self.config.readings()
