"""One simulated instance: its lazily advanced status plan, its billing and its JSON shape.

A status plan is a list of steps (status, scaled duration) that starts at a timestamp; the last
step lasts until the next action. The current status is derived from the clock on each read,
so nothing runs in the background and a replay with the same clock gives the same answers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from novita_manager.simulator.catalogue_types import Cluster, Product
from novita_manager.simulator.responses import dumps
from novita_manager.simulator.validation import CreateRequest

# Billing runs from reaching `pulling` until the instance is stopped (exited) or deleted
# (novita-api.md §4.1); a start or migrate resumes it when `pulling` is reached again. The rate
# is locked when the create, start or migrate is accepted (the product's price then, times the
# GPUs, plus the container disk beyond the free 60 GB at $0.005/GB/day); nothing is billed
# while stopped (container and volume disks do not survive a stop).
BILLABLE = frozenset({"pulling", "running", "toStop", "stopping", "toRestart", "restarting"})
FREE_ROOTFS_GB = 60
DISK_USD_PER_GB_DAY = 0.005
PROXY_DOMAIN = "proxy.sim.novita.local"
LOG_HOST = "https://logs.sim.novita.local"
# Reading `status_error: transient`: what `statusError` says while the instance is in one of
# these states and nothing fatal happened (it is gone again once the instance runs).
TRANSIENT_ERRORS: dict[str, dict[str, str]] = {
    "pulling": {"state": "pulling", "message": "retrying image pull"},
    "starting": {"state": "starting", "message": "waiting for the container to start"},
}
# Fields of GET only: a list item in the docs' reduced shape has none of them.
GET_ONLY = (
    "network",
    "node",
    "jobs",
    "connectComponentSSH",
    "connectComponentWebTerminal",
    "connectComponentJupyter",
    "connectComponentLog",
    "freeStorageSize",
    "keepDataDay",
)


@dataclass(frozen=True)
class View:
    """How an instance is shown: the readings that shape its JSON (defaults: classic GET).

    `reduced`: a list item in the docs' shape (portMappings `{port, type}`, no GET-only
    fields); `node_object`: `node` as `{maxRootfsSize}` rather than `[{...}]`;
    `tools_required`: connectComponentJupyter only when the create sent a Jupyter tool;
    `transient_errors`: `statusError` while pulling or starting; `family_ids`: `productId`
    is the id spanning clusters.
    """

    reduced: bool = False
    node_object: bool = False
    tools_required: bool = False
    transient_errors: bool = False
    family_ids: bool = False


FULL = View()


@dataclass(frozen=True)
class Step:
    status: str
    duration: float | None  # seconds (already scaled); None for the last, open-ended step
    spot_status: str | None = None  # overrides the instance's spot status during this step


@dataclass
class Instance:
    id: str
    request: CreateRequest
    product: Product
    cluster: Cluster
    created_at: float
    ip: str
    tcp_base: int
    ssh_password: str
    plan: tuple[Step, ...]
    plan_start: float
    billed_settled: float = 0.0
    rate_usd: float = 0.0  # USD per hour while billed, locked by the last create/start/migrate
    cost_settled: float = 0.0  # USD of the billed time settled so far (at the rates then)
    # GPU utilisation in percent from each time on (control API); DEFAULT_UTILIZATION before.
    utilization: list[tuple[float, float]] = field(default_factory=list)
    status_error: dict[str, str] | None = None
    spot_base: str = "running"  # spot status outside reclaim steps (`terminated` after one)
    spot_reclaim_time: int = 0
    removed: bool = False  # set once the removal finished and the instance left the listings
    version: int = 0  # bumped on every change that is not derived from the clock
    _json_cache: dict[View, tuple[int, int, bytes]] = field(default_factory=dict, repr=False)

    @property
    def is_spot(self) -> bool:
        return self.request.billing_mode == "spot"

    @property
    def unit_price(self) -> int:
        """Price per GPU-hour in 1/100000 USD (spot price for spot instances)."""
        if self.is_spot and self.product.spot_price:
            return self.product.spot_price
        return self.product.price

    def touch(self) -> None:
        """Invalidate the cached JSON after a change of fields (not of the clock)."""
        self.version += 1

    def _position(self, now: float) -> tuple[int, float]:
        """Index of the current step and the time it began."""
        start = self.plan_start
        last = len(self.plan) - 1
        for index, step in enumerate(self.plan):
            if index == last or step.duration is None or now < start + step.duration:
                return index, start
            start += step.duration
        return last, start  # pragma: no cover - the loop always returns

    def status(self, now: float) -> str:
        return self.plan[self._position(now)[0]].status

    def spot_status(self, now: float) -> str:
        if not self.is_spot:
            return ""
        return self.plan[self._position(now)[0]].spot_status or self.spot_base

    def billed_seconds(self, now: float) -> float:
        """Settled billed time plus the billable part of the current plan up to `now`."""
        total = self.billed_settled
        start = self.plan_start
        for step in self.plan:
            if start >= now:
                break
            end = now if step.duration is None else min(now, start + step.duration)
            if step.status in BILLABLE:
                total += end - start
            if step.duration is None:
                break
            start += step.duration
        return total

    def current_rate(self) -> float:
        """USD per hour at today's price: GPUs plus the container disk beyond 60 GB."""
        disk = max(0, self.request.rootfs_size - FREE_ROOTFS_GB) * DISK_USD_PER_GB_DAY / 24
        return self.unit_price / 100_000 * self.request.gpu_num + disk

    def accrued_cost_usd(self, now: float) -> float:
        unsettled = self.billed_seconds(now) - self.billed_settled
        return round(self.cost_settled + unsettled / 3600 * self.rate_usd, 9)

    def replan(
        self, now: float, steps: tuple[Step, ...], *, reprice: Product | None = None
    ) -> None:
        """Settle billing and spot status up to `now`, then follow a new plan from `now`
        (`reprice`: the product as listed today, whose price a start or migrate pays)."""
        self.cost_settled = self.accrued_cost_usd(now)
        self.billed_settled = self.billed_seconds(now)
        if reprice is not None:
            self.product = reprice
            self.rate_usd = self.current_rate()
        self.spot_base = self.spot_status(now) or "running"
        self.plan = steps
        self.plan_start = now
        self.touch()

    def port_mappings(self, running: bool) -> list[dict[str, Any]]:
        seen: dict[int, str] = {spec.port: spec.type for spec in self.request.ports}
        for tool in self.request.tools:
            seen.setdefault(int(tool["port"]), tool["type"])
        mappings = []
        for offset, (port, kind) in enumerate(seen.items()):
            if not running:
                endpoint = ""
            elif kind == "http":
                endpoint = f"https://{self.id}-{port}.{PROXY_DOMAIN}"
            else:
                endpoint = f"{self.ip}:{self.tcp_base + offset}"
            mappings.append({"port": port, "endpoint": endpoint, "type": kind})
        return mappings

    def json_bytes(self, now: float, view: View = FULL) -> bytes:
        """`to_json` serialised, cached per view while the fields and the current step stay
        the same (listing pages of 100 is the simulator's hot path)."""
        step = self._position(now)[0]
        cached = self._json_cache.get(view)
        if cached is not None and cached[0] == self.version and cached[1] == step:
            return cached[2]
        data = dumps(self.to_json(now, view))
        self._json_cache[view] = (self.version, step, data)
        return data

    def _jupyter_port(self, view: View) -> int | None:
        """The port Jupyter answers on: any port 8888 mapping, or under the reading
        `tools_required` only the port of a Jupyter tool the create sent."""
        if not view.tools_required:
            return 8888
        tool = next((t for t in self.request.tools if t.get("name") == "Jupyter"), None)
        return int(tool["port"]) if tool is not None else None

    def to_json(self, now: float, view: View = FULL) -> dict[str, Any]:
        """The union of the list-item and GET fields (novita-api.md §3.4, §3.5), shaped by
        `view` (a reduced list item, node object, Jupyter, transient errors, family ids)."""
        req = self.request
        status = self.status(now)
        running = status == "running"
        mappings = self.port_mappings(running)
        ssh = next((m for m in mappings if m["port"] == 22 and m["type"] == "tcp"), None)
        jupyter_port = self._jupyter_port(view)
        jupyter = next((m for m in mappings if m["port"] == jupyter_port), None)
        end_time = (
            str(int(self.created_at) + req.month * 30 * 86_400)
            if req.billing_mode == "monthly" and req.month > 0
            else "-1"
        )
        body: dict[str, Any] = {
            "id": self.id,
            "name": req.name,
            "clusterId": self.cluster.id,
            "clusterName": self.cluster.name,
            "status": status,
            "imageUrl": req.image_url,
            "imageAuthId": req.image_auth_id,
            "command": req.command,
            "entrypoint": req.entrypoint,
            "cpuNum": str(self.product.cpu_per_gpu * req.gpu_num),
            "memory": str(self.product.memory_per_gpu * req.gpu_num),
            "gpuNum": str(req.gpu_num),
            "portMappings": mappings,
            "productId": self.product.family if view.family_ids else self.product.id,
            "productName": self.product.name,
            "rootfsSize": req.rootfs_size,
            "volumeMounts": [
                {"type": "network", "size": "100", "id": s["Id"], "mountPath": s["mountPoint"]}
                for s in req.network_storages
            ],
            "envs": [dict(env) for env in req.envs],
            "kind": req.kind,
            "billingMode": req.billing_mode,
            "endTime": end_time,
            "spotStatus": self.spot_status(now),
            "spotReclaimTime": str(self.spot_reclaim_time),
            "createdAt": str(int(self.created_at)),
            "gpuIds": list(range(req.gpu_num)),
            "templateId": "",
            "network": {"id": req.network_id, "ip": self.ip if req.network_id else ""},
            "node": (
                {"maxRootfsSize": self.product.max_rootfs}
                if view.node_object
                else [{"maxRootfsSize": self.product.max_rootfs}]
            ),
            "jobs": [],
            "connectComponentSSH": {
                "sshCommand": f"ssh root@{self.ip} -p {ssh['endpoint'].rsplit(':', 1)[1]}"
                if ssh and running
                else "",
                "password": self.ssh_password,
                "isRunning": running,
            },
            "connectComponentWebTerminal": {
                "address": f"https://{self.id}-terminal.{PROXY_DOMAIN}" if running else "",
                "username": "root",
                "password": self.ssh_password,
                "isRunning": running,
            },
            "connectComponentJupyter": {
                "port": 8888 if jupyter else 0,
                "address": jupyter["endpoint"] if jupyter else "",
                "isRunning": running and jupyter is not None,
            },
            "connectComponentLog": {
                "systemLogAddress": f"{LOG_HOST}/{self.id}/system",
                "instanceLogAddress": f"{LOG_HOST}/{self.id}/instance",
                "isRunning": status not in ("removed", "exited"),
            },
            "freeStorageSize": max(req.rootfs_size - 4, 0),
            "keepDataDay": 7,
        }
        if view.tools_required and jupyter is None:
            del body["connectComponentJupyter"]
        if self.status_error is not None:
            body["statusError"] = dict(self.status_error)
        elif view.transient_errors and status in TRANSIENT_ERRORS:
            body["statusError"] = dict(TRANSIENT_ERRORS[status])
        if view.reduced:
            for key in GET_ONLY:
                body.pop(key, None)
            body["portMappings"] = [{"port": m["port"], "type": m["type"]} for m in mappings]
        return body
