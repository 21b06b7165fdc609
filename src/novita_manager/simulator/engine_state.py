"""The state every part of the engine shares, declared once.

The engine (`engine.Simulator`) is assembled from parts in their own modules: capacity,
catalogue reads, instance reads and instance actions. Each part inherits this declaration so
it type-checks on its own; `Simulator.reset` sets the values.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from novita_manager.simulator.catalogue import Catalogue
from novita_manager.simulator.config import SimulatorConfig
from novita_manager.simulator.instances import Instance

# Capacity limits: (product or family id, cluster id) → instances that may still be created;
# None in the key means any product or any cluster.
Capacity = dict[tuple[str | None, str | None], int]


class EngineState:
    """All simulated state of one Novita account (attributes only)."""

    config: SimulatorConfig
    clock: Callable[[], float]
    rng: random.Random
    catalogue: Catalogue
    instances: dict[str, Instance]  # every instance ever created
    active: dict[str, Instance]  # not yet removed, oldest first
    removing: set[str]  # deleted, removal not finished yet
    capacity: Capacity
    instances_created: int

    def tick(self, now: float) -> None:
        """Apply the scheduled work due by `now` (spot_life.SpotLife overrides this)."""
