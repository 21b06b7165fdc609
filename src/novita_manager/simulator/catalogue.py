"""The simulated catalogue as one object: its figures plus the lookups the engine needs.

Everything here is fixed for a simulator's lifetime (rebuilt on reset with a new seed). The
figures are in catalogue_data.py and templates.py, the types in catalogue_types.py; this
module answers "which product, family, cluster, template or credential is this key".
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from novita_manager.simulator.catalogue_data import CLUSTERS, PRODUCTS, REGISTRY_AUTHS
from novita_manager.simulator.catalogue_types import Cluster, Product, RegistryAuth, Template
from novita_manager.simulator.templates import build_templates


@dataclass
class Catalogue:
    """Everything fixed for a simulator's lifetime (rebuilt on reset with a new seed)."""

    clusters: tuple[Cluster, ...]
    products: tuple[Product, ...]
    templates: tuple[Template, ...]
    auths: tuple[RegistryAuth, ...]
    _product_by_id: dict[str, Product] = field(default_factory=dict)
    _cluster_by_key: dict[str, Cluster] = field(default_factory=dict)
    _families: dict[str, tuple[Product, ...]] = field(default_factory=dict)
    _singles: dict[str, tuple[Product, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._product_by_id = {product.id: product for product in self.products}
        self._singles = {product.id: (product,) for product in self.products}
        families: dict[str, list[Product]] = {}
        for product in self.products:
            families.setdefault(product.family, []).append(product)
        self._families = {key: tuple(entries) for key, entries in families.items()}
        for cluster in self.clusters:
            for key in (cluster.id, cluster.name, cluster.labelled):
                self._cluster_by_key[key.lower()] = cluster

    def groups(self, spanning: bool) -> dict[str, tuple[Product, ...]]:
        """Public product id → its per-cluster entries: one entry per id (`per_cluster`) or
        one id per family spanning its clusters (`spanning`)."""
        return self._families if spanning else self._singles

    def known_product(self, product_id: str) -> bool:
        """Whether a capacity limit may name this id (an entry's id or a family id)."""
        return product_id in self._product_by_id or product_id in self._families

    def cluster(self, key: str) -> Cluster | None:
        """A cluster by id, bare name or labelled name, case-insensitively."""
        return self._cluster_by_key.get(key.strip().lower())

    def auth(self, auth_id: str) -> RegistryAuth | None:
        return next((auth for auth in self.auths if auth.id == auth_id), None)

    def template(self, template_id: str) -> Template | None:
        return next((tpl for tpl in self.templates if tpl.id == template_id), None)

    def product_clusters(self, product: Product) -> list[Cluster]:
        """Clusters a product is offered in (every cluster when its regions are empty)."""
        if not product.regions:
            return list(self.clusters)
        found = [self.cluster(region.split(" (")[0]) for region in product.regions]
        return [cluster for cluster in found if cluster is not None]


def build_catalogue(seed: int) -> Catalogue:
    """The catalogue of a simulator seeded with `seed` (only template times depend on it)."""
    rng = random.Random(f"catalogue:{seed}")
    return Catalogue(CLUSTERS, PRODUCTS, build_templates(rng), REGISTRY_AUTHS)
