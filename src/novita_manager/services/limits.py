"""The limits a create request sets: its fields, or the configuration's defaults."""

from __future__ import annotations

from typing import Any

from novita_manager.config import Settings
from novita_manager.domain.limits import parse_duration
from novita_manager.services.inputs import CreateInstanceBody


def limit_columns(body: CreateInstanceBody, settings: Settings) -> dict[str, Any]:
    """The instance columns of the request's limits (seconds, USD); None means no limit."""

    def seconds(value: int | str | None, default: float | None) -> float | None:
        return default if value is None else parse_duration(value)

    return {
        "auto_stop_after": seconds(body.autoStopAfter, settings.default_auto_stop_after),
        "auto_delete_after": seconds(body.autoDeleteAfter, settings.default_auto_delete_after),
        "idle_stop_after": seconds(body.idleStopAfter, settings.default_idle_stop_after),
        "max_cost": body.maxCost if body.maxCost is not None else settings.default_max_cost,
    }
