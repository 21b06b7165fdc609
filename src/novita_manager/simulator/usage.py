"""Prices and usage: changing a product's price (control API), the GPU utilisation an instance
reports (control API) and `GET /metrics/gpu/instance`.

Metrics (novita-api.md §3.9 leaves the shape open; this follows the shape Novita's sister API
PPIO answers, which Novita's CLI reads): `instanceId`, `startTime`, `endTime` (Unix seconds)
and `interval` in the query; the body has `gpuUtilization: {avg: [{timestamp, value}],
gpuIds: [{gpuId, items: [...]}]}` (percent, timestamps as Unix-seconds strings) beside
`cpuUtilization`, `memUtilization` and `gpuMemUtilization`. Points are taken every `interval`
seconds (default 60 x time scale, at least 0.05 s) over the window, plus one at each change
of utilisation and one at the end, so a change is seen at its own time. A stopped instance
reports 0 %.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from novita_manager.simulator.catalogue import Catalogue
from novita_manager.simulator.errors import SimulatorError, invalid_param
from novita_manager.simulator.instance_reads import InstanceReads

DEFAULT_UTILIZATION = 85.0  # percent, while running, until told otherwise
MAX_POINTS = 2000


class Usage(InstanceReads):
    def set_price(
        self, product_id: str, price: int | None, spot_price: int | None
    ) -> dict[str, Any]:
        """Change a product's prices (1/100000 USD per GPU-hour) from now on: the entry with
        this id, or every entry of the family. Instances keep the rate locked at their last
        create, start or migrate."""
        catalogue = self.catalogue
        matched = [p for p in catalogue.products if product_id in (p.id, p.family)]
        if not matched:
            raise SimulatorError(400, "RESOURCE_NOT_FOUND", "product not found")
        changes: dict[str, Any] = {}
        if price is not None:
            changes["price"] = price
        if spot_price is not None:
            changes["spot_price"] = spot_price
        products = tuple(
            dataclasses.replace(p, **changes) if p in matched else p for p in catalogue.products
        )
        self.catalogue = Catalogue(
            catalogue.clusters, products, catalogue.templates, catalogue.auths
        )
        return {
            "products": [
                {"id": p.id, "price": p.price, "spotPrice": p.spot_price}
                for p in products
                if product_id in (p.id, p.family)
            ]
        }

    def set_utilization(self, instance_id: str, value: float) -> dict[str, Any]:
        """From now on the instance reports `value` percent of GPU utilisation while running."""
        if not 0 <= value <= 100:
            raise invalid_param("gpuUtilization", "must be between 0 and 100")
        now = self.clock()
        instance = self._live(instance_id, now)
        instance.utilization.append((now, float(value)))
        return {"instanceId": instance.id, "gpuUtilization": value, "since": now}

    def utilization_at(self, instance_id: str, at: float) -> float:
        instance = self.instances[instance_id]
        if instance.status(at) != "running":
            return 0.0
        value = DEFAULT_UTILIZATION
        for since, level in instance.utilization:
            if since <= at:
                value = level
        return value

    def gpu_metrics(
        self,
        instance_id: str | None,
        start: float | None,
        end: float | None,
        interval: float | None,
    ) -> dict[str, Any]:
        now = self.clock()
        instance = self._live(instance_id, now)
        end = min(end or now, now)
        step = interval or max(60 * self.config.time_scale, 0.05)
        start = max(start if start is not None else end - 60 * step, instance.created_at)
        if step <= 0 or (end - start) / step > MAX_POINTS:
            raise invalid_param("interval", "too many points for this window")
        times = {end}
        moment = start
        while moment < end:
            times.add(moment)
            moment += step
        times.update(since for since, _ in instance.utilization if start <= since <= end)
        points = [
            {"timestamp": f"{at:.3f}", "value": self.utilization_at(instance.id, at)}
            for at in sorted(times)
        ]
        gpus = [
            {"gpuId": str(index), "items": [dict(point) for point in points]}
            for index in range(instance.request.gpu_num)
        ]
        flat = [{"timestamp": point["timestamp"], "value": 0.0} for point in points]
        return {
            "cpuUtilization": flat,
            "memUtilization": flat,
            "rootDiskUtilization": flat,
            "gpuUtilization": {"avg": points, "gpuIds": gpus},
            "gpuMemUtilization": {"avg": flat, "gpuIds": []},
        }
