"""The engine's instance reads: GET /gpu/instance, GET /gpu/instances and the control listing.

Apart from the actions because reads change nothing but settle finished removals, and their
shape depends only on the readings in force (`View`). Listing order is newest first; paging
follows paging.py.
"""

from __future__ import annotations

from itertools import islice
from typing import Any

from novita_manager.simulator.engine_state import EngineState
from novita_manager.simulator.errors import instance_not_found
from novita_manager.simulator.instances import Instance, View
from novita_manager.simulator.paging import DEFAULT_PAGE_SIZE, page_window


class InstanceReads(EngineState):
    def _settle_removals(self, now: float) -> None:
        self.tick(now)  # scheduled reclaims and capacity changes first (spot_life.py)
        if not self.removing:
            return
        for instance_id in list(self.removing):
            instance = self.instances[instance_id]
            if instance.status(now) == "removed":
                instance.removed = True
                self.removing.discard(instance_id)
                self.active.pop(instance_id, None)

    def _live(self, instance_id: str | None, now: float) -> Instance:
        self._settle_removals(now)
        instance = self.active.get(instance_id or "")
        if instance is None:
            raise instance_not_found(instance_id or "")
        return instance

    def view(self, listing: bool = False) -> View:
        """How instances are shown under the readings in force (`listing`: list items)."""
        cfg = self.config
        return View(
            reduced=listing and cfg.list_shape == "reduced",
            node_object=cfg.node_shape == "object",
            tools_required=cfg.tools_required,
            transient_errors=cfg.status_error == "transient",
            family_ids=cfg.product_ids == "spanning",
        )

    def get(self, instance_id: str | None) -> dict[str, Any]:
        now = self.clock()
        return self._live(instance_id, now).to_json(now, self.view())

    def _page(
        self,
        page_num: int | None,
        page_size: int | None,
        name: str | None,
        status: str | None,
        product_name: str | None,
        now: float,
    ) -> tuple[list[Instance], int]:
        """One page of matches, newest first, and the number of matches: O(page) without
        filters, O(instances) with them."""
        self._settle_removals(now)
        offset, size, _, _ = page_window(self.config, page_num, page_size, DEFAULT_PAGE_SIZE)
        newest_first = reversed(self.active.values())
        if not (name or status or product_name):
            return list(islice(newest_first, offset, offset + size)), len(self.active)
        name_needle = (name or "").lower()
        product_needle = (product_name or "").lower()
        matches = [
            instance
            for instance in newest_first
            if (not name_needle or name_needle in instance.request.name.lower())
            and (not product_needle or product_needle in instance.product.name.lower())
            and (not status or instance.status(now) == status)
        ]
        return matches[offset : offset + size], len(matches)

    def list_instances(
        self,
        page_num: int | None = None,
        page_size: int | None = None,
        name: str | None = None,
        status: str | None = None,
        product_name: str | None = None,
    ) -> dict[str, Any]:
        """GET /gpu/instances as a dict: `{"instances": [...], "total": n}`."""
        now = self.clock()
        chunk, total = self._page(page_num, page_size, name, status, product_name, now)
        view = self.view(listing=True)
        return {"instances": [i.to_json(now, view) for i in chunk], "total": total}

    def list_instances_bytes(
        self,
        page_num: int | None = None,
        page_size: int | None = None,
        name: str | None = None,
        status: str | None = None,
        product_name: str | None = None,
    ) -> bytes:
        """The same answer serialised, from each instance's cached JSON (the HTTP fast path)."""
        now = self.clock()
        chunk, total = self._page(page_num, page_size, name, status, product_name, now)
        view = self.view(listing=True)
        items = b",".join(instance.json_bytes(now, view) for instance in chunk)
        return b'{"instances":[' + items + b'],"total":' + str(total).encode() + b"}"

    def get_bytes(self, instance_id: str | None) -> bytes:
        now = self.clock()
        return self._live(instance_id, now).json_bytes(now, self.view())

    def all_instances(self) -> list[dict[str, Any]]:
        """Every instance ever created, oldest first, with removal and billing details."""
        now = self.clock()
        self._settle_removals(now)
        result = []
        view = self.view()
        for instance in self.instances.values():
            body = instance.to_json(now, view)
            body["removed"] = instance.removed
            body["billedSeconds"] = round(instance.billed_seconds(now), 3)
            body["accruedCostUsd"] = instance.accrued_cost_usd(now)
            body["billingRateUsd"] = round(instance.rate_usd, 9)
            result.append(body)
        return result
