"""`GET /api/costs` as an `ApiCall`, and its answer's model: `client.send(costs_call(...))`
with a `ManagerClient` or an `AsyncManagerClient`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from novita_manager.domain.cost_views import CostReport
from novita_manager.sdk.calls import ApiCall

__all__ = ["CostReport", "costs_call"]


def costs_call(
    since: datetime | str | None = None,
    until: datetime | str | None = None,
    group_by: str = "day",
) -> ApiCall[CostReport]:
    """What the fleet cost in [since, until) grouped by day, instance, product or region."""
    params: dict[str, Any] = {"groupBy": group_by}
    for key, value in (("from", since), ("to", until)):
        if value is not None:
            params[key] = value.isoformat() if isinstance(value, datetime) else value
    return ApiCall("GET", "/api/costs", CostReport.model_validate, params=params)
