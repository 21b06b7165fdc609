"""Which offers a create tries, in which order."""

from __future__ import annotations

from novita_manager.domain.offers import NoOffer, Offer
from novita_manager.domain.regions import resolve_cluster
from novita_manager.novita.catalogue import Catalogue
from novita_manager.novita.errors import NovitaError, is_transient
from novita_manager.store.models import Instance


async def offers_to_try(catalogue: Catalogue, row: Instance) -> list[Offer]:
    """The offers to try, in order: the one chosen when the request was accepted (its price
    was quoted) first, then every other offer in the region, cheapest first.

    Products are listed with the request's billing method and the region's cluster
    (readings `products_default_billing`, `product_ids`), so availability is the cluster's.
    When the catalogue cannot be reached, the chosen offer alone is tried.
    """
    chosen: Offer | None = None
    if row.product_id and row.cluster_id and row.price_per_hour is not None:
        chosen = Offer(
            product_id=row.product_id,
            product_name=row.product_name,
            cluster_id=row.cluster_id,
            price_per_gpu_hour=row.price_per_hour / max(row.gpu_num, 1),
            billing_mode=row.billing_mode,
        )
    try:
        cluster = resolve_cluster(row.region, await catalogue.clusters())
        if cluster is None:
            raise NoOffer("unknown_region", f"Unknown region {row.region!r}")
        ranked = await catalogue.ranked_offers(
            product_name=row.product_name,
            cluster=cluster,
            billing_mode=row.billing_mode,
            rootfs_size=row.rootfs_size,
        )
    except (NoOffer, NovitaError) as error:
        if chosen is None or (isinstance(error, NovitaError) and not is_transient(error)):
            raise
        return [chosen]
    if chosen is None:
        return ranked
    others = [
        offer
        for offer in ranked
        if (offer.product_id, offer.cluster_id) != (chosen.product_id, chosen.cluster_id)
    ]
    return [chosen, *others]
