"""Which offers a create tries, in which order: across the allowed regions, under the price cap,
with the on-demand fallback (`domain.offers.plan_offers`), from the cached catalogue."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from novita_manager.domain.offers import NoOffer, Offer, PriceCap, plan_offers
from novita_manager.domain.regions import ANY_REGION, UnknownRegion, allowed_clusters
from novita_manager.novita.catalogue import Catalogue
from novita_manager.novita.errors import NovitaError, is_transient
from novita_manager.store.models import Instance


@dataclass(frozen=True)
class Placement:
    """What a request allows: where, in which billing mode, up to which price."""

    product_name: str
    region: str
    regions: Sequence[str] | None
    billing_mode: str  # the mode asked for
    rootfs_size: int
    gpu_num: int
    max_price_per_hour: float | None = None
    fallback_to_on_demand: bool = False

    @property
    def any_region(self) -> bool:
        return self.regions is not None and [r.lower() for r in self.regions] == [ANY_REGION]


def placement_of(row: Instance) -> Placement:
    return Placement(
        product_name=row.product_name,
        region=row.region,
        regions=row.regions,
        billing_mode=row.requested_billing_mode or row.billing_mode,
        rootfs_size=row.rootfs_size,
        gpu_num=row.gpu_num,
        max_price_per_hour=row.max_price_per_hour,
        fallback_to_on_demand=bool(row.fallback_to_on_demand),
    )


async def plan(catalogue: Catalogue, placement: Placement) -> list[Offer]:
    """Every offer that serves the request, in the order to try them (never empty).

    Products are listed per cluster with the billing method (readings
    `products_default_billing`, `product_ids`), so availability is the cluster's. Raises
    NoOffer (kind `unknown_region` for a region no cluster answers to, `over_price_cap`, ...)
    and the catalogue's NovitaError.
    """
    try:
        clusters = allowed_clusters(placement.region, placement.regions, await catalogue.clusters())
    except UnknownRegion as unknown:
        raise NoOffer("unknown_region", f"Unknown region {str(unknown)!r}") from None

    async def ranked(billing_mode: str) -> list[list[Offer] | NoOffer]:
        result: list[list[Offer] | NoOffer] = []
        for cluster in clusters:
            try:
                result.append(
                    await catalogue.ranked_offers(
                        product_name=placement.product_name,
                        cluster=cluster,
                        billing_mode=billing_mode,
                        rootfs_size=placement.rootfs_size,
                    )
                )
            except NoOffer as none:
                result.append(none)
        return result

    fallback: list[list[Offer] | NoOffer] = []
    if placement.billing_mode == "spot" and placement.fallback_to_on_demand:
        fallback = await ranked("onDemand")
    return plan_offers(
        await ranked(placement.billing_mode),
        fallback,
        gpu_num=placement.gpu_num,
        cap=PriceCap(
            placement.max_price_per_hour, placement.fallback_to_on_demand, placement.any_region
        ),
        product_name=placement.product_name,
    )


async def offers_to_try(catalogue: Catalogue, row: Instance) -> list[Offer]:
    """The offers to try, in order: the one chosen when the request was accepted (its price
    was quoted) first, then every other allowed offer (`plan`).

    When the catalogue cannot be reached, the chosen offer alone is tried. A recreate (the
    row replaces a reclaimed instance) plans afresh: the quoted offer was where it was taken.
    """
    chosen: Offer | None = None
    if row.product_id and row.cluster_id and row.price_per_hour is not None:
        chosen = Offer(
            product_id=row.product_id,
            product_name=row.product_name,
            cluster_id=row.cluster_id,
            price_per_gpu_hour=row.price_per_hour / max(row.gpu_num, 1),
            billing_mode=row.billing_mode,
            cluster_name=row.cluster_name,
        )
    if row.replaces_novita_id is not None:
        chosen = None
    try:
        ranked = await plan(catalogue, placement_of(row))
    except (NoOffer, NovitaError) as error:
        if chosen is None or (isinstance(error, NovitaError) and not is_transient(error)):
            raise
        return [chosen]
    if chosen is None:
        return ranked
    others = [
        offer
        for offer in ranked
        if (offer.product_id, offer.cluster_id, offer.billing_mode)
        != (chosen.product_id, chosen.cluster_id, chosen.billing_mode)
    ]
    return [chosen, *others]
