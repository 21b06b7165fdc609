"""The catalogue endpoints' use cases: offers, regions and templates, from the TTL cache.

Each answer comes from `novita/catalogue.Catalogue` (clusters, products per cluster and billing
mode, templates; cached for CACHE_TTL), so browsing the catalogue costs Novita nothing between
refreshes. When Novita cannot be reached the last list read is answered with `stale: true`;
with nothing read yet, the error is the API's 502/503.

Offers are read per cluster (`clusterId` sent, readings `product_ids`: availability is then the
cluster's), for each billing mode asked, concurrently.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from novita_manager.domain.catalogue import (
    BILLING_MODES,
    BillingMode,
    OfferList,
    RegionList,
    RegionView,
    TemplateList,
    TemplatePortView,
    TemplateView,
    closest_names,
    cluster_offers,
    ranked,
)
from novita_manager.domain.offers import normalize_name
from novita_manager.domain.regions import resolve_cluster
from novita_manager.errors import ValidationFailed
from novita_manager.novita.errors import NovitaError
from novita_manager.novita.models import Cluster, Product
from novita_manager.services.errors import upstream_api_error

if TYPE_CHECKING:
    from novita_manager.services.runtime import Runtime


async def list_regions(runtime: Runtime) -> RegionList:
    clusters, stale = await _clusters(runtime)
    return RegionList(
        regions=[
            RegionView(
                id=cluster.id,
                name=cluster.name,
                availableGpuTypes=cluster.available_gpu_types,
                supportNetworkStorage=cluster.support_network_storage,
            )
            for cluster in clusters
        ],
        stale=stale,
    )


async def list_templates(runtime: Runtime) -> TemplateList:
    try:
        templates, stale = await runtime.catalogue.templates_or_stale()
    except NovitaError as error:
        raise upstream_api_error(error) from None
    return TemplateList(
        templates=[
            TemplateView(
                id=template.id,
                name=template.name,
                image=template.image,
                channel=template.channel,
                rootfsSize=template.rootfs_size,
                ports=[
                    TemplatePortView(type=port.type, ports=port.ports) for port in template.ports
                ],
            )
            for template in templates
        ],
        stale=stale,
    )


async def list_offers(
    runtime: Runtime,
    *,
    product_name: str | None,
    region: str | None,
    billing_mode: BillingMode | None,
    gpu_num: int,
) -> OfferList:
    """Every deployable offer matching the filters, cheapest first; 400 for an unknown region
    or product (with the closest product names)."""
    clusters, stale = await _clusters(runtime)
    if region is not None:
        cluster = resolve_cluster(region, clusters)
        if cluster is None:
            known = ", ".join(sorted(c.name or c.id for c in clusters))
            raise ValidationFailed(
                f"Unknown region {region!r}; known regions: {known}",
                details=[{"field": "region", "message": f"not one of: {known}"}],
            )
        clusters = [cluster]
    modes = [billing_mode] if billing_mode is not None else list(BILLING_MODES)
    pairs = [(cluster, mode) for cluster in clusters for mode in modes]
    listings = await asyncio.gather(*(_products(runtime, c, mode) for c, mode in pairs))
    offers = []
    names: set[str] = set()
    for (cluster, mode), (products, listing_stale) in zip(pairs, listings, strict=True):
        stale = stale or listing_stale
        names.update(p.name for p in products if p.name)
        offers += cluster_offers(
            products, cluster, billing_mode=mode, gpu_num=gpu_num, product_name=product_name
        )
    if product_name is not None and not offers:
        await _check_product_known(runtime, product_name, names, modes)
    result = ranked(offers)
    return OfferList(offers=result, total=len(result), stale=stale)


async def _check_product_known(
    runtime: Runtime, product_name: str, names: set[str], modes: list[BillingMode]
) -> None:
    """No offer: fine when the product exists (none deployable now); 400 when no product of
    that name exists anywhere, naming the closest ones."""
    for mode in modes:  # products listed without a cluster: every cluster's
        products, _ = await _products(runtime, None, mode)
        names.update(p.name for p in products if p.name)
    wanted = normalize_name(product_name)
    if any(wanted in normalize_name(name) for name in names):
        return  # exists (exactly or as part of a name), but no offer now
    close = closest_names(product_name, names)
    hint = f"; did you mean {', '.join(repr(n) for n in close)}?" if close else ""
    raise ValidationFailed(
        f"No GPU product matches {product_name!r}{hint}",
        details=[
            {"field": "productName", "message": "unknown product", "closestNames": close},
        ],
    )


async def _clusters(runtime: Runtime) -> tuple[list[Cluster], bool]:
    try:
        return await runtime.catalogue.clusters_or_stale()
    except NovitaError as error:
        raise upstream_api_error(error) from None


async def _products(
    runtime: Runtime, cluster: Cluster | None, mode: BillingMode
) -> tuple[list[Product], bool]:
    try:
        return await runtime.catalogue.products_or_stale(
            billing_method=mode, cluster_id=cluster.id if cluster else None
        )
    except NovitaError as error:
        raise upstream_api_error(error) from None
