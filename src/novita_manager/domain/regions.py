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
