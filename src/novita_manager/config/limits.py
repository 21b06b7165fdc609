"""Defaults of the cost and time limits of an instance (issue 17), and how they are watched.

Declared apart from `settings.py` (near the module size limit) and mixed into `Settings`. Each
default applies when a create request leaves its field out; unset (the default) means no limit,
today's behaviour. Durations are seconds or `90s`, `30m`, `8h`, `2d`.
"""

from __future__ import annotations

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings

from novita_manager.domain.limits import parse_duration


class LimitSettings(BaseSettings):
    """The limit defaults (see the module docstring)."""

    default_auto_stop_after: float | None = Field(
        default=None,
        description="Stop an instance this long after it reached running (`autoStopAfter`); "
        "seconds or 90s, 30m, 8h, 2d. Unset: no limit.",
    )
    default_auto_delete_after: float | None = Field(
        default=None,
        description="Delete an instance this long after it was requested, whatever its state "
        "(`autoDeleteAfter`). Unset: no limit.",
    )
    default_idle_stop_after: float | None = Field(
        default=None,
        description="Stop a running instance whose GPU utilisation (Novita's metrics) stayed "
        "under IDLE_GPU_THRESHOLD this long (`idleStopAfter`). Unset: no limit.",
    )
    default_max_cost: float | None = Field(
        default=None,
        gt=0,
        le=1_000_000,
        description="Stop an instance once its cost to date reaches this many USD "
        "(`maxCost`). Unset: no limit.",
    )
    idle_gpu_threshold: float = Field(
        default=5.0,
        ge=0,
        le=100,
        description="GPU utilisation in percent below which an instance counts as idle.",
    )
    expiry_warning_lead: float = Field(
        default=600.0,
        ge=0,
        le=7 * 86_400,
        description="Seconds before a limit stops or deletes an instance that the webhook "
        "`instance.expiring` warns (with `action` and `at`); 0 sends no warning.",
    )

    @field_validator(
        "default_auto_stop_after",
        "default_auto_delete_after",
        "default_idle_stop_after",
        mode="before",
    )
    @classmethod
    def _duration(cls, value: object) -> object:
        if value in ("", None):
            return None
        if isinstance(value, str | int | float):
            return parse_duration(value)
        return value

    @field_validator("default_max_cost", mode="before")
    @classmethod
    def _empty_cost(cls, value: object) -> object:
        return None if value == "" else value
