"""Settings of one simulator, its readings of Novita's ambiguous API, and state durations.

Durations are seconds of simulated time at `time_scale == 1`; every one is multiplied by the
scale when a transition is planned, so 0.01 turns the 45 s image pull into 0.45 s.

Readings (issue 14, novita-api.md §12): where Novita's docs allow more than one reading, the
simulator can play each, so the service is tested against every plausible Novita. A *profile*
names one value for every reading; single readings can be overridden on top of it. The names
and values below are the shared vocabulary of the simulator, the client's tests and `doctor`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

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

# ---- readings and profiles ----

# Allowed values of each reading (`page_size_cap` is checked apart: None or an int >= 1).
READING_CHOICES: dict[str, tuple[Any, ...]] = {
    "page_base": (0, 1),
    "page_zero": ("same", "refused"),
    "page_size_cap": (),
    "list_shape": ("reduced", "full"),
    "node_shape": ("array", "object"),
    "products_default_billing": ("onDemand", "all"),
    "product_ids": ("spanning", "per_cluster"),
    "capacity_error": ("reason", "message"),
    "status_error": ("fatal_only", "transient"),
    "tools_required": (True, False),
    "name_rule": ("any", "strict"),
}
READINGS: tuple[str, ...] = tuple(READING_CHOICES)

PROFILES: dict[str, dict[str, Any]] = {
    # The most adverse plausible reading for a client.
    "adverse": {
        "page_base": 0,
        "page_zero": "refused",  # only matters under base 1
        "page_size_cap": 20,
        "list_shape": "reduced",
        "node_shape": "object",
        "products_default_billing": "onDemand",
        "product_ids": "spanning",
        "capacity_error": "message",
        "status_error": "transient",
        "tools_required": True,
        "name_rule": "strict",
    },
    # The opposite of `adverse` on every point, close to the classic simulator.
    "lenient": {
        "page_base": 1,
        "page_zero": "refused",
        "page_size_cap": None,
        "list_shape": "full",
        "node_shape": "array",
        "products_default_billing": "all",
        "product_ids": "per_cluster",
        "capacity_error": "reason",
        "status_error": "fatal_only",
        "tools_required": False,
        "name_rule": "any",
    },
}
# The simulator as it was before readings existed: lenient, but pageNum 0 and 1 are the same page.
PROFILES["classic"] = {**PROFILES["lenient"], "page_zero": "same"}

# The profile of a simulator nobody chose one for (tests, the demo, `novita-manager simulator`):
# the most adverse plausible reading of Novita's API, so that what passes here holds on Novita.
DEFAULT_PROFILE = "adverse"


class ReadingError(ValueError):
    """An unknown profile or reading, or a value a reading does not take."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def readings_for(profile: str) -> dict[str, Any]:
    """Every reading's value under `profile` (a fresh dict, safe to change)."""
    try:
        return dict(PROFILES[profile])
    except (KeyError, TypeError):
        names = ", ".join(sorted(PROFILES))
        raise ReadingError("profile", f"unknown profile {profile!r}; one of {names}") from None


def check_reading(name: str, value: Any) -> Any:
    """`value` if `name` is a reading that takes it, else ReadingError naming both."""
    if name not in READING_CHOICES:
        known = ", ".join(READINGS)
        raise ReadingError(name, f"unknown reading; one of {known}")
    if name == "page_size_cap":
        if value is None or (isinstance(value, int) and not isinstance(value, bool) and value > 0):
            return value
        raise ReadingError(name, f"must be null or an integer >= 1, not {value!r}")
    choices = READING_CHOICES[name]
    # `True == 1` in Python: compare types too, so page_base=True or tools_required=1 fail.
    if any(type(value) is type(choice) and value == choice for choice in choices):
        return value
    allowed = ", ".join(repr(choice) for choice in choices)
    raise ReadingError(name, f"must be one of {allowed}, not {value!r}")


def resolve_readings(profile: str, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The profile's readings with `overrides` applied, every value checked."""
    readings = readings_for(profile)
    for name, value in (overrides or {}).items():
        readings[name] = check_reading(name, value)
    return readings


def parse_reading(text: str) -> tuple[str, Any]:
    """`key=value` from the command line: ints, `none`/`null`, `true`/`false`, else a string."""
    name, sep, raw = text.partition("=")
    name, raw = name.strip().replace("-", "_"), raw.strip()
    if not sep or not name:
        raise ReadingError("reading", f"expected key=value, not {text!r}")
    value: Any = raw
    if raw.lower() in ("none", "null"):
        value = None
    elif raw.lower() in ("true", "false"):
        value = raw.lower() == "true"
    elif raw.lstrip("-").isdigit():
        value = int(raw)
    return name, check_reading(name, value)


class _FromProfile:
    """Default of a reading field: take the value from the profile."""

    def __repr__(self) -> str:
        return "<from profile>"


_FROM_PROFILE: Any = _FromProfile()


@dataclass
class SimulatorConfig:
    """How one simulator behaves; `/_simulator/reset`, `/config` and `/profile` can change it.

    Reading fields left unset take their value from `profile`; set ones override it, e.g.
    `SimulatorConfig(profile="adverse", page_size_cap=None)`.
    """

    seed: int = 42
    time_scale: float = 1.0
    api_key: str | None = None  # None: any non-empty Bearer key is accepted
    autostart: bool = True  # False: new instances stop in `exited` and wait for a start
    reclaim_lead: float = SPOT_RECLAIM_GRACE  # notice before a reclaim (simulated seconds)
    profile: str = DEFAULT_PROFILE
    page_base: int = _FROM_PROFILE
    page_zero: str = _FROM_PROFILE
    page_size_cap: int | None = _FROM_PROFILE
    list_shape: str = _FROM_PROFILE
    node_shape: str = _FROM_PROFILE
    products_default_billing: str = _FROM_PROFILE
    product_ids: str = _FROM_PROFILE
    capacity_error: str = _FROM_PROFILE
    status_error: str = _FROM_PROFILE
    tools_required: bool = _FROM_PROFILE
    name_rule: str = _FROM_PROFILE

    def __post_init__(self) -> None:
        if self.time_scale < 0:
            raise ValueError("time_scale must be >= 0")
        overrides = {
            name: getattr(self, name)
            for name in READINGS
            if getattr(self, name) is not _FROM_PROFILE
        }
        self.use_profile(self.profile, overrides)

    def readings(self) -> dict[str, Any]:
        """The value of every reading now in force."""
        return {name: getattr(self, name) for name in READINGS}

    def overrides(self) -> dict[str, Any]:
        """The readings that differ from the profile's own values."""
        base = readings_for(self.profile)
        return {name: value for name, value in self.readings().items() if base[name] != value}

    def use_profile(self, profile: str, overrides: Mapping[str, Any] | None = None) -> None:
        """Switch to `profile` with `overrides`; nothing changes when any of them is invalid."""
        readings = resolve_readings(profile, overrides)
        self.profile = profile
        for name, value in readings.items():
            setattr(self, name, value)
