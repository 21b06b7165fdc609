"""`GET /api/costs`: what the fleet cost within a window, grouped (services/costs.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from novita_manager.api.deps import get_runtime
from novita_manager.api.openapi import error_responses
from novita_manager.domain.cost_views import CostReport
from novita_manager.domain.costs import GroupBy
from novita_manager.errors import ValidationFailed
from novita_manager.services import costs
from novita_manager.services.runtime import Runtime

router = APIRouter(prefix="/api/costs", tags=["costs"])
RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def _utc(moment: datetime | None, field: str) -> datetime | None:
    """In UTC (naive: taken as UTC); a moment UTC cannot hold (year 1 or 9999 with an
    offset) is a 400 naming the field."""
    if moment is None:
        return None
    try:
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except OverflowError:
        message = "is out of range"
        raise ValidationFailed(
            f"{field} {message}", details=[{"field": field, "message": message}]
        ) from None


@router.get(
    "",
    response_model=CostReport,
    response_model_by_alias=True,
    responses=error_responses(400),
    summary="What the fleet cost within a window, by day, instance, product or region",
    description="Cost to date of every managed instance (deleted ones included) within "
    "[`from`, `to`): billed periods (from Novita's `pulling` until stopped or removed, estimated "
    "from the statuses the service saw) at the price recorded when each began, plus container "
    "disk beyond 60 GB; nothing while stopped. Days are UTC. `spendRatePerHour` is what the "
    "instances billed now cost per hour.",
)
async def get_costs(
    runtime: RuntimeDep,
    from_: Annotated[
        datetime | None,
        Query(
            alias="from",
            description="Window start, ISO-8601 date or date-time (UTC when no offset is "
            "given); must be before `to` and before now, else 400. Default: the beginning.",
        ),
    ] = None,
    to: Annotated[
        datetime | None,
        Query(
            description="Window end, ISO-8601 date or date-time (UTC when no offset is given); "
            "a later end is cut to now. Default: now."
        ),
    ] = None,
    groupBy: Annotated[GroupBy, Query(description="How to group the cost.")] = GroupBy.DAY,
) -> CostReport:
    return await costs.cost_report(runtime, _utc(from_, "from"), _utc(to, "to"), groupBy)
