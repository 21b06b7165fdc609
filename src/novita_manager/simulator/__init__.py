"""A faithful, fault-injecting imitation of Novita's GPU-instance API (v1).

The engine (`engine.Simulator`: catalogue, instance state machine, billing, capacity) is plain
Python so it can be unit-tested without a server; `app.create_simulator_app` puts it behind
FastAPI under `/gpu-instance/openapi/v1`, with fault injection and a `/_simulator` control API.
`server` runs it for tests, the demo and benchmarks.
"""

from novita_manager.simulator.config import (
    DEFAULT_PROFILE,
    PROFILES,
    READINGS,
    SimulatorConfig,
    readings_for,
)

__all__ = ["DEFAULT_PROFILE", "PROFILES", "READINGS", "SimulatorConfig", "readings_for"]
