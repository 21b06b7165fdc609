"""The engine's catalogue reads: /clusters, /products, /templates, /template, /repository/auths.

Apart from the catalogue itself because the answers depend on the readings in force (default
`billingMethod`, product ids spanning clusters, paging) and on capacity left, which the
catalogue does not know.
"""

from __future__ import annotations

from typing import Any

from novita_manager.simulator.capacity import CapacityLimits
from novita_manager.simulator.catalogue_types import Cluster, Product
from novita_manager.simulator.errors import SimulatorError, invalid_param
from novita_manager.simulator.paging import DEFAULT_TEMPLATE_PAGE_SIZE, page_window

BILLING_ORDER = ("onDemand", "monthly", "spot")
INVENTORY_RANK = {"high": 3, "normal": 2, "low": 1, "none": 0}


def product_json(
    public_id: str,
    family: tuple[Product, ...],
    shown: list[Product],
    deployable: list[Product],
    *,
    hide_spot: bool = False,
) -> dict[str, Any]:
    """One `/products` item for `public_id`, merged over the entries `shown` (those of the
    family left by the filters); `deployable` are the shown entries with capacity left.

    Regions list every cluster of the family. With one entry shown this is that entry as it
    is; with several, prices are the lowest (`from ...`), `availableDeploy` and
    `inventoryState` say whether any cluster has stock (product-wide, novita-api.md §12 #3).
    `hide_spot` answers `spotPrice` "0", as a listing limited to on-demand offers may.
    """
    first = shown[0]
    regions: list[str] = []
    for entry in family:
        if not entry.regions:
            regions = []
            break
        regions += [region for region in entry.regions if region not in regions]
    available = any(entry.available_deploy for entry in deployable)
    states = [entry.inventory_state for entry in deployable]
    inventory = max(states, key=lambda state: INVENTORY_RANK.get(state, 0)) if states else "none"
    spot = [entry.spot_price for entry in shown if entry.supports_spot and entry.spot_price]
    spot_price = min(spot) if spot else first.spot_price
    methods = [m for m in BILLING_ORDER if any(m in entry.billing_methods for entry in shown)]
    monthly = [entry.price for entry in shown if "monthly" in entry.billing_methods]
    body: dict[str, Any] = {
        "id": public_id,
        "name": first.name,
        "cpuPerGpu": first.cpu_per_gpu,
        "memoryPerGpu": first.memory_per_gpu,
        "diskPerGpu": first.disk_per_gpu,
        "availableDeploy": available,
        "canBuy": available,
        "minRootFS": min(entry.min_rootfs for entry in shown),
        "maxRootFS": max(entry.max_rootfs for entry in shown),
        "minLocalStorage": 0,
        "maxLocalStorage": first.disk_per_gpu * max(entry.max_gpu_num for entry in shown),
        "regions": regions,
        "price": str(min(entry.price for entry in shown)),
        "monthlyPrice": [{"price": min(monthly) * 24 * 30 * 8 // 10, "month": 1}]
        if monthly
        else [],
        "billingMethods": methods,
        "inventoryState": inventory,
    }
    if hide_spot:
        spot_price = 0
    if spot_price is not None:
        body["spotPrice"] = str(spot_price)
    return body


class CatalogueReads(CapacityLimits):
    def clusters(self) -> dict[str, Any]:
        return {"data": [cluster.to_json() for cluster in self.catalogue.clusters]}

    def products(
        self,
        cluster_id: str | None = None,
        gpu_num: int | None = None,
        product_name: str | None = None,
        billing_method: str | None = None,
        min_cpu_per_gpu: int | None = None,
        min_memory_per_gpu: int | None = None,
        min_rootfs_size: int | None = None,
    ) -> dict[str, Any]:
        self.tick(self.clock())  # capacity may have changed on schedule (spot_life.py)
        cluster: Cluster | None = None
        if cluster_id:
            cluster = self.catalogue.cluster(cluster_id)
            if cluster is None:
                return {"data": []}
        if gpu_num is not None and not 0 <= gpu_num <= 8:
            raise invalid_param("gpuNum", "must be between 0 and 8")
        # Reading `products_default_billing`: without billingMethod, on-demand offers only,
        # and an on-demand listing does not tell spot prices.
        on_demand_default = self.config.products_default_billing == "onDemand"
        method = billing_method or ("onDemand" if on_demand_default else None)
        hide_spot = on_demand_default and method == "onDemand"
        spanning = self.config.product_ids == "spanning"
        needle = (product_name or "").lower()
        data = []
        for public_id, family in self.catalogue.groups(spanning).items():
            spec = family[0]
            if needle and needle not in spec.name.lower():
                continue
            pairs = [
                (entry, where)
                for entry in family
                if entry.offers(method)
                for where in self.catalogue.product_clusters(entry)
                if cluster is None or where == cluster
            ]
            if not pairs:
                continue
            shown = list(dict.fromkeys(entry for entry, _ in pairs))
            if gpu_num and gpu_num > max(entry.max_gpu_num for entry in shown):
                continue
            if min_cpu_per_gpu and spec.cpu_per_gpu < min_cpu_per_gpu:
                continue
            if min_memory_per_gpu and spec.memory_per_gpu < min_memory_per_gpu:
                continue
            if min_rootfs_size and max(entry.max_rootfs for entry in shown) < min_rootfs_size:
                continue
            deployable = list(
                dict.fromkeys(
                    entry for entry, where in pairs if self._capacity_left(entry, where) != 0
                )
            )
            data.append(product_json(public_id, family, shown, deployable, hide_spot=hide_spot))
        return {"data": data}

    def templates(
        self,
        page_num: int | None = None,
        page_size: int | None = None,
        name: str | None = None,
        channel: str | None = None,
        type_: str | None = None,
    ) -> dict[str, Any]:
        offset, served, size, echoed = page_window(
            self.config, page_num, page_size, DEFAULT_TEMPLATE_PAGE_SIZE
        )
        channels = {c.strip() for c in (channel or "").split(",") if c.strip()}
        needle = (name or "").lower()
        matches = [
            tpl
            for tpl in self.catalogue.templates
            if (not channels or tpl.channel in channels)
            and (not needle or needle in tpl.name.lower())
            and (not type_ or type_ == "instance")
        ]
        chunk = matches[offset : offset + served]
        return {
            "template": [tpl.to_json() for tpl in chunk],
            "total": len(matches),
            "pageSize": size,
            "pageNum": echoed,
        }

    def template(self, template_id: str | None) -> dict[str, Any]:
        tpl = self.catalogue.template(template_id or "")
        if tpl is None:
            raise SimulatorError(
                400, "TEMPLATE_NOT_FOUND", "template not found", {"templateId": template_id or ""}
            )
        return {"template": tpl.to_json()}

    def repository_auths(self) -> dict[str, Any]:
        return {"data": [auth.to_json() for auth in self.catalogue.auths]}
