"""Capacity limits of the engine: how many more instances a product or cluster takes.

Limits are set through `/_simulator/capacity`; a create consumes one from every limit that
matches it, and `/products` shows an entry without capacity left as not deployable. A refusal
is told as the reading `capacity_error` says.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from novita_manager.simulator.catalogue_types import Cluster, Product
from novita_manager.simulator.engine_state import EngineState
from novita_manager.simulator.errors import SimulatorError, invalid_param

# Reason of a capacity refusal under the reading `capacity_error: message`, whose message then
# alone says INSUFFICIENT_RESOURCE (novita-api.md §12 #5).
CAPACITY_OTHER_REASON = "FAILED_PRECONDITION"


class CapacityLimits(EngineState):
    def set_capacity(
        self, product_id: str | None, cluster_id: str | None, available: int | None
    ) -> None:
        """Limit how many more instances may be created (None removes the limit)."""
        if cluster_id:
            cluster = self.catalogue.cluster(cluster_id)
            if cluster is None:
                raise invalid_param("clusterId", "unknown cluster")
            cluster_id = cluster.id
        if product_id and not self.catalogue.known_product(product_id):
            raise invalid_param("productId", "unknown product")
        key = (product_id or None, cluster_id or None)
        if available is None:
            self.capacity.pop(key, None)
        else:
            self.capacity[key] = max(available, 0)

    def _limits(
        self, product: Product, cluster: Cluster
    ) -> Iterator[tuple[str | None, str | None]]:
        for key in self.capacity:
            pid, cid = key
            if (pid is None or pid in (product.id, product.family)) and (
                cid is None or cid == cluster.id
            ):
                yield key

    def _capacity_left(self, product: Product, cluster: Cluster) -> int | None:
        """How many more instances fit (None: unlimited)."""
        left = [self.capacity[key] for key in self._limits(product, cluster)]
        return min(left) if left else None

    def _insufficient(
        self, message: str, *, start: bool = False, **metadata: Any
    ) -> SimulatorError:
        """A capacity refusal as the reading `capacity_error` tells it: by reason, or by a
        message alone (`start instance error` first when a start is refused)."""
        if self.config.capacity_error == "reason":
            return SimulatorError(400, "INSUFFICIENT_RESOURCE", message, metadata)
        text = f"INSUFFICIENT_RESOURCE: {message}"
        if start:
            text = f"start instance error: {text}"
        return SimulatorError(400, CAPACITY_OTHER_REASON, text, metadata)
