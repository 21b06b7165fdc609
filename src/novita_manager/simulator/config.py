"""Settings of one simulator and the base durations of its instance states.

Durations are seconds of simulated time at `time_scale == 1`; every one is multiplied by the
scale when a transition is planned, so 0.01 turns the 45 s image pull into 0.45 s.
"""

from __future__ import annotations

from dataclasses import dataclass

API_PREFIX = "/gpu-instance/openapi/v1"

# Base duration of each transient status, in seconds (before `time_scale`).
DURATIONS: dict[str, float] = {
    "toCreate": 2.0,
    "creating": 5.0,
    "pulling": 45.0,
    "toStart": 1.0,
    "starting": 8.0,
    "toStop": 1.0,
    "stopping": 5.0,
    "toRestart": 1.0,
    "restarting": 8.0,
    "toRemove": 1.0,
    "removing": 3.0,
    "migrating": 20.0,
}
# Spot reclaim: notice given (spotStatus `notified`), then the reclaim itself (`reclaiming`).
SPOT_RECLAIM_GRACE = 30.0
SPOT_RECLAIMING = 5.0

HANG_SECONDS = 3600.0


@dataclass
class SimulatorConfig:
    """How one simulator behaves; `/_simulator/reset` and `/_simulator/config` can change it."""

    seed: int = 42
    time_scale: float = 1.0
    api_key: str | None = None  # None: any non-empty Bearer key is accepted
    autostart: bool = True  # False: new instances stop in `exited` and wait for a start

    def __post_init__(self) -> None:
        if self.time_scale < 0:
            raise ValueError("time_scale must be >= 0")
