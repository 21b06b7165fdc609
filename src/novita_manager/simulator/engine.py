"""The simulation engine: catalogue reads, instance actions, capacity and billing, no HTTP.

Choices where novita-api.md leaves room (documented for the client's authors):
- Unknown `productId` or `clusterId` on create: 400 `RESOURCE_NOT_FOUND`.
- Product not offered in the cluster, not deployable, out of stock, too many GPUs, or capacity
  exhausted: 400 `INSUFFICIENT_RESOURCE` (or, under the reading `capacity_error: message`,
  `FAILED_PRECONDITION` with the message saying it). Spot/monthly on a product without it:
  400 `UNSUPPORTED_BILLING_MODE`.
- Unknown instance (or one whose removal finished): 404 `RESOURCE_NOT_FOUND`, "instance not
  found". Transition not allowed: 400 `INVALID_STATE_CHANGE`, "invalid state change".
- Allowed transitions: start from `exited` (a reclaimed spot instance refuses with
  `INSUFFICIENT_RESOURCE`: migrate it); stop from `pulling`, `running`, `starting` or
  `restarting`; restart from `running`; migrate from `running` or `exited`; delete from any
  state (repeating it while removing is accepted and changes nothing).
- A failed instance (`/_simulator/instances/{id}/fail`) ends `exited` with `statusError`; the
  next start clears `statusError`.
- Listing order is newest first. `pageSize` 0 or absent means 10; above 500 is capped at 500.

Readings (config.py, docs/simulator.md) change answers where Novita's docs are ambiguous: the
first `pageNum`, a silent `pageSize` cap, list items' shape, `node`'s shape, the default
`billingMethod` of /products, product ids spanning clusters, how a capacity refusal is told,
transient `statusError`, whether Jupyter needs the create's `tools`, and the name rule.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator, Mapping
from itertools import islice
from typing import Any

from novita_manager.simulator.catalogue import (
    Catalogue,
    Cluster,
    Product,
    build_catalogue,
    product_json,
)
from novita_manager.simulator.config import (
    DURATIONS,
    SPOT_RECLAIM_GRACE,
    SPOT_RECLAIMING,
    ReadingError,
    SimulatorConfig,
)
from novita_manager.simulator.errors import (
    SimulatorError,
    instance_not_found,
    invalid_param,
    invalid_state_change,
)
from novita_manager.simulator.instances import Instance, Step, View
from novita_manager.simulator.validation import validate_create

DEFAULT_PAGE_SIZE = 10
MAX_PAGE_SIZE = 500
DEFAULT_TEMPLATE_PAGE_SIZE = 20

STOPPABLE = frozenset({"pulling", "running", "starting", "restarting"})
MIGRATABLE = frozenset({"running", "exited"})

Capacity = dict[tuple[str | None, str | None], int]


# Reason of a capacity refusal under the reading `capacity_error: message`, whose message then
# alone says INSUFFICIENT_RESOURCE (novita-api.md §12 #5).
CAPACITY_OTHER_REASON = "FAILED_PRECONDITION"


def page_window(
    config: SimulatorConfig, page_num: int | None, page_size: int | None, default: int
) -> tuple[int, int, int, int]:
    """(offset, items on the page, requested size, page number echoed) under the paging
    readings: `page_base` (0: pageNum=0 is the first page; 1: pageNum=1 is), `page_zero`
    (base 1: pageNum=0 is the first page or 400) and `page_size_cap` (a silent cap).
    An absent pageNum is the first page."""
    if page_num is not None and page_num < 0:
        raise invalid_param("pageNum", "must be >= 0")
    if page_size is not None and page_size < 0:
        raise invalid_param("pageSize", "must be >= 0")
    size = min(page_size or default, MAX_PAGE_SIZE)
    served = min(size, config.page_size_cap) if config.page_size_cap else size
    base = config.page_base
    if page_num is None:
        index = 0
    elif base == 0:
        index = page_num
    elif page_num == 0:
        if config.page_zero == "refused":
            raise invalid_param("pageNum", "must be >= 1")
        index = 0
    else:
        index = page_num - 1
    return index * served, served, size, index + base


class Simulator:
    """All simulated state of one Novita account. Not thread-safe: drive it from one loop."""

    def __init__(self, config: SimulatorConfig, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.clock = clock
        self.reset()

    # ---- lifecycle of the simulator itself ----

    def reset(
        self,
        seed: int | None = None,
        autostart: bool | None = None,
        time_scale: float | None = None,
        profile: str | None = None,
        readings: Mapping[str, Any] | None = None,
    ) -> None:
        """Forget every instance and capacity limit; reseed (same seed unless one is given).

        With `profile` or `readings`, switch readings first (nothing changes if they are
        invalid); without them the readings in force stay."""
        if profile is not None or readings is not None:
            self.set_profile(profile, readings)
        if seed is not None:
            self.config.seed = seed
        self.configure(autostart=autostart, time_scale=time_scale)
        self.rng = random.Random(self.config.seed)
        self.catalogue: Catalogue = build_catalogue(self.config.seed)
        self.instances: dict[str, Instance] = {}  # every instance ever created
        self.active: dict[str, Instance] = {}  # not yet removed, oldest first
        self.removing: set[str] = set()  # deleted, removal not finished yet
        self.capacity: Capacity = {}
        self.instances_created = 0

    def configure(self, autostart: bool | None = None, time_scale: float | None = None) -> None:
        """Change behaviour for later actions; plans already under way keep their timing."""
        if autostart is not None:
            self.config.autostart = autostart
        if time_scale is not None:
            if time_scale < 0:
                raise invalid_param("timeScale", "must be >= 0")
            self.config.time_scale = time_scale

    def set_profile(
        self, profile: str | None = None, readings: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """Play `profile` (default: the one in force) with `readings` overriding it.

        Later answers follow the new readings at once, existing instances included; plans
        already under way keep their steps. 400 VALIDATOR_PARAM on an unknown profile or
        reading, or a value a reading does not take."""
        try:
            self.config.use_profile(profile or self.config.profile, readings)
        except ReadingError as exc:
            raise invalid_param(exc.field, exc.message) from None
        return self.config.readings()

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

    # ---- catalogue ----

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

    # ---- capacity ----

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

    # ---- instances ----

    def _steps(self, *names: str, final: str) -> tuple[Step, ...]:
        scale = self.config.time_scale
        return (*(Step(name, DURATIONS[name] * scale) for name in names), Step(final, None))

    def _new_id(self) -> str:
        while True:
            candidate = f"{self.rng.getrandbits(64):016x}"
            if candidate not in self.instances:
                return candidate

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

    def _pick_offer(
        self, public_id: str, family: tuple[Product, ...], cluster_key: str
    ) -> tuple[Product, Cluster]:
        """The entry and cluster a create lands on: the named cluster's entry (refused when
        the product is not offered there), else a random cluster with stock and capacity."""
        pairs = [
            (entry, where) for entry in family for where in self.catalogue.product_clusters(entry)
        ]
        if cluster_key:
            cluster = self.catalogue.cluster(cluster_key)
            if cluster is None:
                raise SimulatorError(
                    400, "RESOURCE_NOT_FOUND", "cluster not found", {"clusterId": cluster_key}
                )
            here = [pair for pair in pairs if pair[1] == cluster]
            if not here:
                raise self._insufficient(
                    "product is not available in this cluster",
                    productId=public_id,
                    clusterId=cluster.id,
                )
            return here[0]
        open_pairs = [
            (entry, where)
            for entry, where in pairs
            if entry.available_deploy
            and entry.inventory_state != "none"
            and self._capacity_left(entry, where) != 0
        ]
        return self.rng.choice(open_pairs or pairs)

    def create(self, body: Any) -> dict[str, str]:
        """POST /gpu/instance/create: validate, check stock and capacity, start the plan."""
        req = validate_create(body, strict_names=self.config.name_rule == "strict")
        spanning = self.config.product_ids == "spanning"
        family = self.catalogue.groups(spanning).get(req.product_id)
        if family is None:
            raise SimulatorError(
                400, "RESOURCE_NOT_FOUND", "product not found", {"productId": req.product_id}
            )
        max_rootfs = max(entry.max_rootfs for entry in family)
        if req.rootfs_size > max_rootfs:
            raise invalid_param("rootfsSize", f"must be at most {max_rootfs} for this product")
        if req.image_auth_id and self.catalogue.auth(req.image_auth_id) is None:
            raise invalid_param("imageAuthId", "unknown registry credential")
        product, cluster = self._pick_offer(req.product_id, family, req.cluster_id)
        if req.rootfs_size > product.max_rootfs:
            raise invalid_param(
                "rootfsSize", f"must be at most {product.max_rootfs} in this cluster"
            )
        if req.billing_mode not in product.billing_methods or (
            req.billing_mode == "spot" and not product.supports_spot
        ):
            raise SimulatorError(
                400,
                "UNSUPPORTED_BILLING_MODE",
                f"billing mode {req.billing_mode} is not supported by this product",
                {"productId": req.product_id, "billingMode": req.billing_mode},
            )
        if req.gpu_num > product.max_gpu_num:
            raise self._insufficient("not enough GPUs on one node", productId=req.product_id)
        if not product.available_deploy or product.inventory_state == "none":
            raise self._insufficient("insufficient resource", productId=req.product_id)
        limits = list(self._limits(product, cluster))
        if any(self.capacity[key] <= 0 for key in limits):
            raise self._insufficient(
                "insufficient resource", productId=req.product_id, clusterId=cluster.id
            )
        for key in limits:
            self.capacity[key] -= 1

        now = self.clock()
        plan = (
            self._steps("toCreate", "creating", "pulling", final="running")
            if self.config.autostart
            else self._steps("toCreate", "creating", final="exited")
        )
        instance = Instance(
            id=self._new_id(),
            request=req,
            product=product,
            cluster=cluster,
            created_at=now,
            ip=f"203.0.113.{self.rng.randrange(1, 255)}",
            tcp_base=self.rng.randrange(20_000, 60_000),
            ssh_password=f"{self.rng.getrandbits(48):012x}",
            plan=plan,
            plan_start=now,
        )
        self.instances[instance.id] = instance
        self.active[instance.id] = instance
        self.instances_created += 1
        return {"id": instance.id}

    def _settle_removals(self, now: float) -> None:
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

    def _transition(
        self,
        instance_id: str | None,
        action: str,
        allowed: frozenset[str] | None,
        steps: tuple[Step, ...],
    ) -> tuple[Instance, float]:
        now = self.clock()
        instance = self._live(instance_id, now)
        status = instance.status(now)
        if allowed is not None and status not in allowed:
            raise invalid_state_change(instance.id, status, action)
        instance.replan(now, steps)
        return instance, now

    def _answer(self, instance: Instance, now: float) -> dict[str, str]:
        return {"instanceId": instance.id, "state": instance.status(now)}

    def start(self, instance_id: str | None) -> dict[str, str]:
        now = self.clock()
        instance = self._live(instance_id, now)
        status = instance.status(now)
        if status != "exited":
            raise invalid_state_change(instance.id, status, "start")
        if instance.is_spot and instance.spot_status(now) == "terminated":
            raise self._insufficient(
                "the node's resources were reclaimed; migrate the instance",
                start=True,
                instanceId=instance.id,
            )
        instance.status_error = None
        instance.replan(now, self._steps("toStart", "starting", "pulling", final="running"))
        return self._answer(instance, now)

    def stop(self, instance_id: str | None) -> dict[str, str]:
        steps = self._steps("toStop", "stopping", final="exited")
        return self._answer(*self._transition(instance_id, "stop", STOPPABLE, steps))

    def restart(self, instance_id: str | None) -> dict[str, str]:
        steps = self._steps("toRestart", "restarting", final="running")
        allowed = frozenset({"running"})
        return self._answer(*self._transition(instance_id, "restart", allowed, steps))

    def delete(self, instance_id: str | None) -> dict[str, str]:
        now = self.clock()
        instance = self._live(instance_id, now)
        if instance.id not in self.removing:
            instance.replan(now, self._steps("toRemove", "removing", final="removed"))
            self.removing.add(instance.id)
        return self._answer(instance, now)

    def migrate(self, instance_id: str | None) -> dict[str, str]:
        steps = self._steps("migrating", "pulling", final="running")
        instance, now = self._transition(instance_id, "migrate", MIGRATABLE, steps)
        instance.spot_base = "running"
        instance.spot_reclaim_time = 0
        instance.status_error = None
        instance.touch()
        return self._answer(instance, now)

    # ---- control-only actions ----

    def reclaim(self, instance_id: str) -> dict[str, str]:
        """Spot reclaim: notified (grace) → reclaiming → exited with spotStatus terminated."""
        now = self.clock()
        instance = self._live(instance_id, now)
        if not instance.is_spot:
            raise SimulatorError(400, "REQUEST", "not a spot instance", {"instanceId": instance.id})
        status = instance.status(now)
        if status != "running":
            raise invalid_state_change(instance.id, status, "reclaim")
        scale = self.config.time_scale
        grace = SPOT_RECLAIM_GRACE * scale
        instance.replan(
            now,
            (
                Step("running", grace, "notified"),
                Step("stopping", SPOT_RECLAIMING * scale, "reclaiming"),
                Step("exited", None, "terminated"),
            ),
        )
        instance.spot_reclaim_time = max(int(now + grace), 1)
        instance.touch()
        return self._answer(instance, now)

    def fail(
        self, instance_id: str, state: str | None = None, message: str | None = None
    ) -> dict[str, str]:
        """Fail an instance now: it shows `exited` with `statusError{state, message}`."""
        now = self.clock()
        instance = self._live(instance_id, now)
        if instance.id in self.removing:
            raise invalid_state_change(instance.id, instance.status(now), "fail")
        failed_in = state or instance.status(now)
        default = (
            f"failed to pull image {instance.request.image_url}: manifest unknown"
            if failed_in == "pulling"
            else "container exited with code 1"
        )
        instance.status_error = {"state": failed_in, "message": message or default}
        instance.replan(now, (Step("exited", None),))
        return self._answer(instance, now)

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
            result.append(body)
        return result
