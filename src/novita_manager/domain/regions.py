"""Region resolution against Novita's `/clusters`, and matching of product `regions` entries.

Users name a region by its code (`CN-HK-01`), a cluster id (`cn-hongkong-1`) or a cluster name;
product `regions` carry labelled names (`CN-HK-01 (Hong Kong)`) or, in older responses, bare ones.
Everything is matched case-insensitively from the live cluster list, never a hard-coded table.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Protocol, TypeVar

_LABEL = re.compile(r"\s*\(.*\)\s*$")


class ClusterLike(Protocol):
    @property
    def id(self) -> str: ...

    @property
    def name(self) -> str | None: ...


def region_code(entry: str) -> str:
    """`"CN-HK-01 (Hong Kong)"` → `"cn-hk-01"`; bare names and ids pass through, lower-cased."""
    return _LABEL.sub("", entry).strip().lower()


C = TypeVar("C", bound=ClusterLike)


def resolve_cluster(region: str, clusters: Sequence[C]) -> C | None:
    """The cluster a user's region names: by id, by name, or by a labelled name's code."""
    wanted = region_code(region)
    for cluster in clusters:
        if wanted in (cluster.id.lower(), region_code(cluster.name or "")):
            return cluster
    return None


def offered_in(product_regions: Sequence[str], cluster: ClusterLike) -> bool:
    """Whether a product whose `regions` are given is offered in `cluster` (empty = everywhere)."""
    if not product_regions:
        return True
    keys = {cluster.id.lower(), region_code(cluster.name or "")}
    return any(region_code(entry) in keys for entry in product_regions)


ANY_REGION = "any"


class UnknownRegion(ValueError):
    """A region that no cluster answers to (the message names it)."""


def allowed_clusters(region: str, regions: Sequence[str] | None, clusters: Sequence[C]) -> list[C]:
    """The clusters a request may run in, in the order to try them.

    `regions` (ordered) extends `region`: the region first, then the others in the user's order.
    `["any"]` allows every cluster (the region first; the engine then orders by price). Without
    `regions` only the region. Raises UnknownRegion naming the first region not found.
    """
    if regions is not None and [entry.lower() for entry in regions] == [ANY_REGION]:
        first = resolve_cluster(region, clusters)
        if first is None:
            raise UnknownRegion(region)
        return [first, *(cluster for cluster in clusters if cluster.id != first.id)]
    chosen: list[C] = []
    for name in [region, *(regions or [])]:
        cluster = resolve_cluster(name, clusters)
        if cluster is None:
            raise UnknownRegion(name)
        if all(cluster.id != seen.id for seen in chosen):
            chosen.append(cluster)
    return chosen
