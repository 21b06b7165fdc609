"""Clusters, products and templates from Novita, cached with a TTL and fetched once at a time.

A burst of 1,000 creates needs the catalogue once, not 1,000 times: concurrent misses for one key
wait for a single upstream call (single flight). Hits and misses are counted for /metrics.

Products are always asked with `billingMethod` (Novita may list only on-demand offers without it,
readings `products_default_billing`) and, when a region is chosen, its `clusterId` (one product id
may span clusters, and its availability describes the whole product unless `clusterId` is sent,
readings `product_ids`); the cache key holds both.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from novita_manager.domain.offers import NoOffer, Offer, matching_products, rank_offers
from novita_manager.domain.regions import ClusterLike
from novita_manager.metrics import Metrics
from novita_manager.novita.client import NovitaClient
from novita_manager.novita.errors import NovitaError
from novita_manager.novita.models import Cluster, Product, Template
from novita_manager.novita.template_listing import list_templates

T = TypeVar("T")


class TTLCache:
    def __init__(self, ttl: float, metrics: Metrics | None, clock: Callable[[], float]) -> None:
        self._ttl = ttl
        self._metrics = metrics
        self._clock = clock
        self._entries: dict[tuple[str, str], tuple[float, Any]] = {}
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}

    async def get(self, cache: str, key: str, load: Callable[[], Awaitable[T]]) -> T:
        entry_key = (cache, key)
        entry = self._entries.get(entry_key)
        if entry is not None and entry[0] > self._clock():
            self._record(cache, hit=True)
            return entry[1]  # type: ignore[no-any-return]
        lock = self._locks.setdefault(entry_key, asyncio.Lock())
        async with lock:
            entry = self._entries.get(entry_key)
            if entry is not None and entry[0] > self._clock():
                self._record(cache, hit=True)
                return entry[1]  # type: ignore[no-any-return]
            self._record(cache, hit=False)
            value = await load()
            self._entries[entry_key] = (self._clock() + self._ttl, value)
            return value

    async def get_or_stale(
        self, cache: str, key: str, load: Callable[[], Awaitable[T]]
    ) -> tuple[T, bool]:
        """`get`, or, when loading fails (Novita unreachable, circuit open), the last value
        loaded, however old, with True ("stale"); raises when there never was one."""
        try:
            return await self.get(cache, key, load), False
        except NovitaError:
            entry = self._entries.get((cache, key))
            if entry is None:
                raise
            return entry[1], True

    def _record(self, cache: str, *, hit: bool) -> None:
        if self._metrics is not None:
            self._metrics.record_cache(cache, hit)


class Catalogue:
    def __init__(
        self,
        client: NovitaClient,
        ttl: float,
        metrics: Metrics | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._cache = TTLCache(ttl, metrics, clock)

    async def clusters(self) -> list[Cluster]:
        return await self._cache.get("clusters", "all", self._client.list_clusters)

    async def products(self, *, billing_method: str, cluster_id: str | None) -> list[Product]:
        """Products offered with `billing_method` (spot or onDemand), in `cluster_id` when given;
        their availability is then that cluster's."""
        return await self._cache.get(
            "products",
            f"{billing_method}|{cluster_id or '*'}",
            lambda: self._client.list_products(
                billing_method=billing_method, cluster_id=cluster_id
            ),
        )

    async def ranked_offers(
        self, *, product_name: str, cluster: ClusterLike, billing_mode: str, rootfs_size: int
    ) -> list[Offer]:
        """The offers for a request in `cluster`, cheapest first (domain.offers.rank_offers),
        from products listed for that cluster and billing mode.

        A product that the cluster's listing leaves out but that exists elsewhere (or with
        the other billing mode) is "no offer in the region", not "unknown product".
        """
        products = await self.products(billing_method=billing_mode, cluster_id=cluster.id)
        try:
            return rank_offers(
                products,
                product_name=product_name,
                cluster=cluster,
                billing_mode=billing_mode,
                rootfs_size=rootfs_size,
            )
        except NoOffer as no_offer:
            if no_offer.kind != "unknown_product":
                raise
            for method in (billing_mode, "onDemand" if billing_mode == "spot" else "spot"):
                if matching_products(
                    await self.products(billing_method=method, cluster_id=None), product_name
                ):
                    raise NoOffer(
                        "no_offer_in_region",
                        f"No deployable {billing_mode} offer for {product_name!r} in region "
                        f"{cluster.name} ({cluster.id}) right now",
                    ) from None
            raise

    # Reads for the catalogue endpoints (services/catalogue.py): the cached value, or the last
    # one with `stale` True while Novita cannot be reached.

    async def clusters_or_stale(self) -> tuple[list[Cluster], bool]:
        return await self._cache.get_or_stale("clusters", "all", self._client.list_clusters)

    async def products_or_stale(
        self, *, billing_method: str, cluster_id: str | None
    ) -> tuple[list[Product], bool]:
        return await self._cache.get_or_stale(
            "products",
            f"{billing_method}|{cluster_id or '*'}",
            lambda: self._client.list_products(
                billing_method=billing_method, cluster_id=cluster_id
            ),
        )

    async def templates_or_stale(self) -> tuple[list[Template], bool]:
        return await self._cache.get_or_stale(
            "template_list", "all", lambda: list_templates(self._client)
        )

    async def template(self, template_id: str) -> Template:
        return await self._cache.get(
            "templates", template_id, lambda: self._client.get_template(template_id)
        )
