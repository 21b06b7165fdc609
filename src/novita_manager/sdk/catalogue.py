"""The catalogue endpoints as `ApiCall`s: offers, regions, templates (executed by the clients)."""

from __future__ import annotations

from typing import Any

from novita_manager.domain.catalogue import OfferList, RegionList, TemplateList
from novita_manager.sdk.calls import ApiCall


def _offers(
    product_name: str | None = None,
    region: str | None = None,
    billing_mode: str | None = None,
    gpu_num: int = 1,
) -> ApiCall[OfferList]:
    """Deployable offers, cheapest first (`GET /api/offers`); `stale` when from an old list."""
    params: dict[str, Any] = {"gpuNum": gpu_num}
    optional = {"productName": product_name, "region": region, "billingMode": billing_mode}
    params.update({key: value for key, value in optional.items() if value is not None})
    return ApiCall("GET", "/api/offers", OfferList.model_validate, params=params)


def _regions() -> ApiCall[RegionList]:
    """Novita's regions (clusters) and their GPU types (`GET /api/regions`)."""
    return ApiCall("GET", "/api/regions", RegionList.model_validate)


def _templates() -> ApiCall[TemplateList]:
    """Templates to create instances from (`GET /api/templates`)."""
    return ApiCall("GET", "/api/templates", TemplateList.model_validate)
