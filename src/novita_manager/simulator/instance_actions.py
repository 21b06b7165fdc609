"""The engine's state machine: create, the instance actions and the control-only actions.

Every action checks the current status (derived from the clock), then replaces the instance's
plan with scaled steps (config.DURATIONS times time_scale), which also settles billing up to now
(instances.py). Allowed transitions and refusals are listed in engine.py's docstring.
"""

from __future__ import annotations

from typing import Any

from novita_manager.simulator.catalogue_types import Cluster, Product
from novita_manager.simulator.config import DURATIONS
from novita_manager.simulator.errors import SimulatorError, invalid_param, invalid_state_change
from novita_manager.simulator.instances import Instance, Step
from novita_manager.simulator.spot_life import SpotLife
from novita_manager.simulator.validation import validate_create

STOPPABLE = frozenset({"pulling", "running", "starting", "restarting"})
MIGRATABLE = frozenset({"running", "exited"})


class InstanceActions(SpotLife):
    def _steps(self, *names: str, final: str) -> tuple[Step, ...]:
        scale = self.config.time_scale
        return (*(Step(name, DURATIONS[name] * scale) for name in names), Step(final, None))

    def _new_id(self) -> str:
        while True:
            candidate = f"{self.rng.getrandbits(64):016x}"
            if candidate not in self.instances:
                return candidate

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
        self.tick(self.clock())  # capacity changes due by now (spot_life.py)
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
        instance.rate_usd = instance.current_rate()
        self.instances[instance.id] = instance
        self.active[instance.id] = instance
        self.instances_created += 1
        self._record_live(instance, alive=True)
        return {"id": instance.id}

    def _transition(
        self,
        instance_id: str | None,
        action: str,
        allowed: frozenset[str] | None,
        steps: tuple[Step, ...],
        reprice: bool = False,
    ) -> tuple[Instance, float]:
        now = self.clock()
        instance = self._live(instance_id, now)
        status = instance.status(now)
        if allowed is not None and status not in allowed:
            raise invalid_state_change(instance.id, status, action)
        instance.replan(now, steps, reprice=self._listed(instance) if reprice else None)
        return instance, now

    def _listed(self, instance: Instance) -> Product:
        """The instance's product as the catalogue lists it now (its price may have changed)."""
        return self.catalogue.groups(False).get(instance.product.id, (instance.product,))[0]

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
        steps = self._steps("toStart", "starting", "pulling", final="running")
        instance.replan(now, steps, reprice=self._listed(instance))
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
            self._record_live(instance, alive=False)
        return self._answer(instance, now)

    def migrate(self, instance_id: str | None) -> dict[str, str]:
        instance = self._live(instance_id, self.clock())
        if any(self.capacity[key] <= 0 for key in self._limits(instance.product, instance.cluster)):
            raise SimulatorError(
                400,
                "MIGRATE_INSUFFICIENT_RESOURCE",
                "no node with capacity to migrate to in this cluster",
                {"instanceId": instance.id, "clusterId": instance.cluster.id},
            )
        steps = self._steps("migrating", "pulling", final="running")
        instance, now = self._transition(instance_id, "migrate", MIGRATABLE, steps, reprice=True)
        instance.spot_base = "running"
        instance.spot_reclaim_time = 0
        instance.status_error = None
        instance.touch()
        return self._answer(instance, now)

    # ---- control-only actions ----

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
