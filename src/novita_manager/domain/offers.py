"""Offer selection: the cheapest deployable product for a request, as a pure function.

Rules (CONTRACT.md "Offer selection"): among products whose name matches, that are offered in the
region and deployable now (`availableDeploy` true and `inventoryState` not `none`), that offer the
billing mode and fit the requested root disk, take the lowest price (`spotPrice` for spot, `price`
for on-demand). Ties go to the better-stocked product, then the smaller product id, so the choice
is deterministic. `rank_offers` gives the whole order: when Novita refuses the cheapest for
capacity, the engine tries the next.

Availability is judged per cluster: the products given here must have been listed with the
chosen cluster's `clusterId` (readings `product_ids`: one product id may span clusters, and its
`availableDeploy` describes the whole product unless `clusterId` is sent).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

from novita_manager.domain.regions import ClusterLike, offered_in

_INVENTORY_RANK = {"high": 0, "normal": 1, "low": 2}


class ProductLike(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def name(self) -> str | None: ...
    @property
    def available_deploy(self) -> bool: ...
    @property
    def regions(self) -> list[str]: ...
    @property
    def billing_methods(self) -> list[str]: ...
    @property
    def inventory_state(self) -> str | None: ...
    @property
    def min_rootfs(self) -> int | None: ...
    @property
    def max_rootfs(self) -> int | None: ...
    @property
    def price_usd(self) -> float | None: ...
    @property
    def spot_price_usd(self) -> float | None: ...


@dataclass(frozen=True)
class Offer:
    product_id: str
    product_name: str
    cluster_id: str
    price_per_gpu_hour: float  # USD per GPU per hour; a whole instance costs `instance_price`
    billing_mode: str
    cluster_name: str | None = None  # the region code users know (`CN-HK-01`)

    def instance_price(self, gpu_num: int) -> float:
        """USD per hour for an instance of `gpu_num` GPUs: the figure the API shows."""
        return round(self.price_per_gpu_hour * gpu_num, 6)


class NoOffer(Exception):
    """No product can serve the request; `kind` tells the API which clear message to give."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind  # unknown_product | no_offer_in_region | rootfs_out_of_range
        self.message = message


def normalize_name(name: str) -> str:
    return re.sub(r"\s+", " ", name).strip().lower()


P = TypeVar("P", bound=ProductLike)


def matching_products(products: Sequence[P], product_name: str) -> list[P]:
    """Exact (case- and space-insensitive) name matches, or else names containing the query."""
    wanted = normalize_name(product_name)
    exact = [p for p in products if normalize_name(p.name or "") == wanted]
    return exact or [p for p in products if wanted in normalize_name(p.name or "")]


def unit_price(product: ProductLike, billing_mode: str) -> float | None:
    """Price per GPU-hour in USD for the billing mode, or None when the mode is not offered."""
    if billing_mode == "spot":
        if product.billing_methods and "spot" not in product.billing_methods:
            return None
        price = product.spot_price_usd
    else:
        if product.billing_methods and "onDemand" not in product.billing_methods:
            return None
        price = product.price_usd
    return price if price is not None and price > 0 else None


def is_deployable(product: ProductLike) -> bool:
    return product.available_deploy and (product.inventory_state or "").lower() != "none"


def fits_rootfs(product: ProductLike, rootfs_size: int) -> bool:
    low, high = product.min_rootfs, product.max_rootfs
    return (not low or rootfs_size >= low) and (not high or rootfs_size <= high)


def rank_offers(
    products: Sequence[ProductLike],
    *,
    product_name: str,
    cluster: ClusterLike,
    billing_mode: str,
    rootfs_size: int,
) -> list[Offer]:
    """Every offer that can serve the request in the cluster, cheapest first (never empty).

    The engine tries them in order when Novita refuses a create for capacity
    (INSUFFICIENT_RESOURCE), so a request fails only when no offer in the region has room.
    Raises NoOffer saying precisely why there is none.
    """
    named = matching_products(products, product_name)
    if not named:
        raise NoOffer("unknown_product", f"No GPU product matches {product_name!r}")
    in_region = [p for p in named if offered_in(p.regions, cluster)]
    priced = [(p, unit_price(p, billing_mode)) for p in in_region if is_deployable(p)]
    available = [(p, price) for p, price in priced if price is not None]
    if not available:
        raise NoOffer(
            "no_offer_in_region",
            f"No deployable {billing_mode} offer for {product_name!r} in region "
            f"{cluster.name} ({cluster.id}) right now",
        )
    fitting = [(p, price) for p, price in available if fits_rootfs(p, rootfs_size)]
    if not fitting:
        ranges = sorted({f"{p.min_rootfs}..{p.max_rootfs}" for p, _ in available})
        raise NoOffer(
            "rootfs_out_of_range",
            f"rootfsSize {rootfs_size} GB does not fit {product_name!r} (allowed: "
            f"{', '.join(ranges)} GB)",
        )
    ranked = sorted(
        fitting,
        key=lambda item: (
            item[1],
            _INVENTORY_RANK.get((item[0].inventory_state or "normal").lower(), 1),
            item[0].id,
        ),
    )
    return [
        Offer(
            product_id=product.id,
            product_name=product.name or product_name,
            cluster_id=cluster.id,
            price_per_gpu_hour=price,
            billing_mode=billing_mode,
            cluster_name=cluster.name,
        )
        for product, price in ranked
    ]


def select_offer(
    products: Sequence[ProductLike],
    *,
    product_name: str,
    cluster: ClusterLike,
    billing_mode: str,
    rootfs_size: int,
) -> Offer:
    """The cheapest offer for the request, or NoOffer saying precisely why there is none."""
    return rank_offers(
        products,
        product_name=product_name,
        cluster=cluster,
        billing_mode=billing_mode,
        rootfs_size=rootfs_size,
    )[0]


@dataclass(frozen=True)
class PriceCap:
    """The request's placement rules beyond one region: a cap on the whole instance's price
    (USD/h, None: none), whether on-demand may be paid when no spot offer is under it, and
    whether every cluster is allowed (`regions: "any"`: cheapest first across them)."""

    max_price_per_hour: float | None = None
    fallback_to_on_demand: bool = False
    any_region: bool = False


def plan_offers(
    primary: Sequence[list[Offer] | NoOffer],
    fallback: Sequence[list[Offer] | NoOffer],
    *,
    gpu_num: int,
    cap: PriceCap,
    product_name: str,
) -> list[Offer]:
    """The offers a create tries, in order, across the allowed clusters.

    `primary` holds each allowed cluster's ranked offers in the requested billing mode (or why
    it has none), in the user's region order; `fallback` the same for on-demand when the request
    is spot and `fallbackToOnDemand` is set (else empty). Offers over the cap are dropped. The
    primary offers come first: by region order, cheapest first within a region (or all by price
    for `any`); then the on-demand ones in the same order. Raises NoOffer: kind `over_price_cap`
    when offers exist but none is under the cap (the message names the cap and the cheapest),
    else the most telling reason a cluster gave (unknown product, root disk, none in region).
    """

    def ordered(per_cluster: Sequence[list[Offer] | NoOffer]) -> list[Offer]:
        offers = [offer for item in per_cluster if isinstance(item, list) for offer in item]
        if cap.any_region:
            offers.sort(key=lambda offer: offer.price_per_gpu_hour)  # stable: region order
        return offers

    every = ordered(primary) + ordered(fallback)
    limit = cap.max_price_per_hour
    under = [o for o in every if limit is None or o.instance_price(gpu_num) <= limit + 1e-9]
    if under:
        return under
    if every:
        cheapest = min(every, key=lambda offer: offer.instance_price(gpu_num))
        raise NoOffer(
            "over_price_cap",
            f"No offer for {product_name!r} at or under maxPricePerHour ${limit:g}/h: the "
            f"cheapest is ${cheapest.instance_price(gpu_num):g}/h ({cheapest.billing_mode} in "
            f"{cheapest.cluster_id})",
        )
    reasons = [item for item in (*primary, *fallback) if isinstance(item, NoOffer)]
    for kind in ("unknown_product", "rootfs_out_of_range", "no_offer_in_region"):
        for reason in reasons:
            if reason.kind == kind:
                raise reason
    raise NoOffer("no_offer_in_region", f"No deployable offer for {product_name!r}")
