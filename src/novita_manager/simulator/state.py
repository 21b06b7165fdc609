"""What one running simulator holds: the engine, the faults and the call counts."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from novita_manager.simulator.config import SimulatorConfig
from novita_manager.simulator.engine import Simulator
from novita_manager.simulator.faults import CallStats, FaultBook


class SimulatorState:
    def __init__(self, config: SimulatorConfig, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.engine = Simulator(config, clock)
        self.faults = FaultBook(config.seed)
        self.stats = CallStats()

    def reset(
        self,
        seed: int | None = None,
        autostart: bool | None = None,
        time_scale: float | None = None,
        profile: str | None = None,
        readings: Mapping[str, Any] | None = None,
    ) -> None:
        """Back to a fresh account: no instances, faults, counts or capacity limits.

        `profile`/`readings` switch the readings too (see `Simulator.set_profile`); without
        them the readings in force stay."""
        self.engine.reset(
            seed=seed,
            autostart=autostart,
            time_scale=time_scale,
            profile=profile,
            readings=readings,
        )
        self.faults.reset(self.config.seed)
        self.stats.reset()

    def config_json(self) -> dict[str, object]:
        return {
            "seed": self.config.seed,
            "timeScale": self.config.time_scale,
            "autostart": self.config.autostart,
            "reclaimLeadTime": self.config.reclaim_lead,
            "apiKeyRequired": self.config.api_key is not None,
            "profile": self.config.profile,
        }

    def clock_json(self) -> dict[str, float]:
        """The simulated clock: `now` (epoch seconds, offset included: the time `statusSince`,
        `createdAt` and every other time the simulator reports are in) and `offset` (clock
        seconds `/_simulator/clock` advanced since the last reset)."""
        engine = self.engine
        return {"now": engine.clock(), "offset": engine.clock_offset}

    def profile_json(self) -> dict[str, Any]:
        """The profile's name, every reading in force and those overriding the profile."""
        return {
            "profile": self.config.profile,
            "readings": self.config.readings(),
            "overrides": self.config.overrides(),
        }
