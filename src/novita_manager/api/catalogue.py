"""The catalogue API: offers, regions and templates, thin handlers over `services.catalogue`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from novita_manager.api.deps import get_runtime
from novita_manager.api.openapi import error_responses
from novita_manager.domain.catalogue import BillingMode, OfferList, RegionList, TemplateList
from novita_manager.services import catalogue
from novita_manager.services.runtime import Runtime

router = APIRouter(prefix="/api", tags=["catalogue"])
RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
UPSTREAM = {
    "e502": "Novita answered with an error and nothing was cached yet (`UPSTREAM_ERROR`)",
    "e503": "Novita is unavailable and nothing was cached yet (`UPSTREAM_UNAVAILABLE`), or "
    "this process is overloaded (`SERVICE_UNAVAILABLE`)",
}


@router.get(
    "/offers",
    response_model=OfferList,
    responses=error_responses(
        400,
        502,
        503,
        e400="Invalid filter (`VALIDATION_ERROR`): an unknown region (the known ones are "
        "named), or a product no GPU product matches (`details[0].closestNames` lists the "
        "closest names)",
        **UPSTREAM,
    ),
    summary="Deployable offers: product, region, price per hour, availability, disk range",
    description="Each product deployable now in each region with each billing mode, cheapest "
    "first; `pricePerHour` is for the whole instance of `gpuNum` GPUs, as a create would "
    "record. Served from the catalogue cache (CACHE_TTL); `stale` is true when Novita could "
    "not be reached and the list is the last one read. A known product without any "
    "deployable offer now gives an empty list.",
)
async def list_offers(
    runtime: RuntimeDep,
    product_name: Annotated[
        str | None,
        Query(
            alias="productName",
            min_length=1,
            max_length=200,
            description="Only products whose name matches (exact, case-insensitive, or else "
            "containing it), as a create matches `productName`.",
        ),
    ] = None,
    region: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=100,
            description="Only this region: a code (`CN-HK-01`), a cluster id or a cluster name.",
        ),
    ] = None,
    billing_mode: Annotated[
        BillingMode | None, Query(alias="billingMode", description="Only this billing mode.")
    ] = None,
    gpu_num: Annotated[
        int, Query(alias="gpuNum", ge=1, le=8, description="GPUs of the instance priced.")
    ] = 1,
) -> OfferList:
    return await catalogue.list_offers(
        runtime,
        product_name=product_name,
        region=region,
        billing_mode=billing_mode,
        gpu_num=gpu_num,
    )


@router.get(
    "/regions",
    response_model=RegionList,
    responses=error_responses(502, 503, **UPSTREAM),
    summary="Novita's regions (clusters) and their GPU types",
    description="Each `id` or `name` is accepted as a create's `region`. From the catalogue "
    "cache; `stale` as for offers.",
)
async def list_regions(runtime: RuntimeDep) -> RegionList:
    return await catalogue.list_regions(runtime)


@router.get(
    "/templates",
    response_model=TemplateList,
    responses=error_responses(502, 503, **UPSTREAM),
    summary="Templates the account can create instances from (id, name, image, ports)",
    description="Official, community and the account's own templates; `id` is a create's "
    "`templateId`. From the catalogue cache; `stale` as for offers.",
)
async def list_templates(runtime: RuntimeDep) -> TemplateList:
    return await catalogue.list_templates(runtime)
