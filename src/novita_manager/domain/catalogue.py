"""What Novita offers, as the catalogue endpoints show it: offers, regions, templates (pure).

An offer is one product deployable now in one cluster with one billing mode; its
`pricePerHour` is for the whole instance (per-GPU price x `gpuNum`), the figure a create would
record. The rules of "deployable" and of the price are those of offer selection
(`domain/offers.py`), so what `GET /api/offers` lists is what `POST /api/instances` can pick.
Kept apart from `domain/views.py` (the instance views) because it changes for other reasons.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from typing import Literal

from pydantic import BaseModel, Field

from novita_manager.domain.offers import (
    ProductLike,
    is_deployable,
    matching_products,
    unit_price,
)
from novita_manager.domain.regions import ClusterLike

BillingMode = Literal["spot", "onDemand"]
BILLING_MODES: tuple[BillingMode, ...] = ("spot", "onDemand")
_AVAILABILITY_RANK = {"high": 0, "normal": 1, "low": 2}


class OfferView(BaseModel):
    productId: str
    productName: str
    region: str = Field(description="The cluster's name (a region code such as `CN-HK-01`).")
    clusterId: str
    billingMode: BillingMode
    gpuNum: int
    pricePerHour: float = Field(description="USD per hour for the whole instance (all GPUs).")
    pricePerGpuHour: float = Field(description="USD per GPU per hour.")
    availability: str = Field(
        description="Novita's inventory state in this cluster: `high`, `normal`, `low` (or "
        "`unknown` when Novita does not say)."
    )
    minRootfsSize: int | None = Field(description="Smallest root disk in GB (`rootfsSize`).")
    maxRootfsSize: int | None = Field(description="Largest root disk in GB.")
    cpuPerGpu: int | None = None
    memoryPerGpu: int | None = Field(default=None, description="GB of memory per GPU.")


class OfferList(BaseModel):
    offers: list[OfferView] = Field(description="Cheapest first.")
    total: int
    stale: bool = Field(
        description="True when Novita could not be reached and (part of) the list is the last "
        "one read, possibly out of date."
    )


class RegionView(BaseModel):
    id: str = Field(description="Novita's cluster id (accepted as `region`).")
    name: str | None = Field(description="The region code (accepted as `region`).")
    availableGpuTypes: list[str]
    supportNetworkStorage: bool | None = None


class RegionList(BaseModel):
    regions: list[RegionView]
    stale: bool


class TemplatePortView(BaseModel):
    type: str | None = Field(description="`http` or `tcp`.")
    ports: list[int]


class TemplateView(BaseModel):
    id: str = Field(description="The `templateId` of a create.")
    name: str | None
    image: str | None
    channel: str | None = Field(description="`official`, `community` or `private`.")
    rootfsSize: int | None = None
    ports: list[TemplatePortView]


class TemplateList(BaseModel):
    templates: list[TemplateView]
    stale: bool


def cluster_offers(
    products: Sequence[ProductLike],
    cluster: ClusterLike,
    *,
    billing_mode: BillingMode,
    gpu_num: int,
    product_name: str | None,
) -> list[OfferView]:
    """The deployable offers of products listed for `cluster` with `billing_mode`."""
    chosen = matching_products(products, product_name) if product_name else list(products)
    offers = []
    for product in chosen:
        price = unit_price(product, billing_mode)
        if price is None or not is_deployable(product):
            continue
        offers.append(
            OfferView(
                productId=product.id,
                productName=product.name or product.id,
                region=cluster.name or cluster.id,
                clusterId=cluster.id,
                billingMode=billing_mode,
                gpuNum=gpu_num,
                pricePerHour=round(price * gpu_num, 6),
                pricePerGpuHour=price,
                availability=(product.inventory_state or "unknown").lower(),
                minRootfsSize=product.min_rootfs,
                maxRootfsSize=product.max_rootfs,
                cpuPerGpu=getattr(product, "cpu_per_gpu", None),
                memoryPerGpu=getattr(product, "memory_per_gpu", None),
            )
        )
    return offers


def ranked(offers: Iterable[OfferView]) -> list[OfferView]:
    """Cheapest first; then the better stocked, then by region and product (deterministic)."""
    return sorted(
        offers,
        key=lambda o: (
            o.pricePerHour,
            _AVAILABILITY_RANK.get(o.availability, 3),
            o.region,
            o.productName,
            o.billingMode,
        ),
    )


def closest_names(wanted: str, names: Iterable[str], n: int = 5) -> list[str]:
    """Product names that look like `wanted` (for the 400 of an unknown product)."""
    unique = sorted(set(names))
    by_lower = {name.lower(): name for name in unique}
    close = difflib.get_close_matches(wanted.lower(), list(by_lower), n=n, cutoff=0.4)
    return [by_lower[name] for name in close]
