"""The spot-life fields of a create request with the configured defaults filled in."""

from __future__ import annotations

from dataclasses import dataclass

from novita_manager.config import Settings
from novita_manager.domain.regions import ANY_REGION
from novita_manager.services.inputs import CreateInstanceBody


@dataclass(frozen=True)
class SpotFields:
    region: str  # the first region: `region`, else the first of `regions`, else DEFAULT_REGION
    regions: list[str] | None  # the others in order, ["any"], or None (the region only)
    max_price_per_hour: float | None
    fallback_to_on_demand: bool
    on_reclaim: str
    max_recoveries: int


def spot_fields(body: CreateInstanceBody, settings: Settings) -> SpotFields:
    """Each field the request leaves out takes its DEFAULT_* setting (config/spot.py)."""
    raw = body.regions if body.regions is not None else (settings.default_regions or None)
    regions: list[str] | None
    if raw is None:
        regions = None
    elif isinstance(raw, str) or [entry.lower() for entry in raw] == [ANY_REGION]:
        regions = [ANY_REGION]
    else:
        regions = list(raw)
    region = body.region
    if region is None:
        first = regions[0] if regions and regions != [ANY_REGION] else None
        region = first or settings.default_region
    cap = body.maxPricePerHour
    fallback = body.fallbackToOnDemand
    return SpotFields(
        region=region,
        regions=regions,
        max_price_per_hour=cap if cap is not None else settings.default_max_price_per_hour,
        fallback_to_on_demand=(
            fallback if fallback is not None else settings.default_fallback_to_on_demand
        ),
        on_reclaim=body.onReclaim or settings.default_on_reclaim,
        max_recoveries=(
            body.maxRecoveries
            if body.maxRecoveries is not None
            else settings.default_max_recoveries
        ),
    )
