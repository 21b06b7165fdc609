"""Validation of the create body, following the field table of novita-api.md §3.3.

Every failure is 400 `VALIDATOR_PARAM` with the field name in the message and in
`metadata.field`. Product-dependent checks (maxRootFS, billing mode, capacity) live in the engine.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from novita_manager.simulator.errors import invalid_param

RESERVED_PORTS = frozenset({2222, 2223, 2224})
BILLING_MODES = ("onDemand", "monthly", "spot")
MAX_PORTS = 15
# Reading `name_rule: strict` (the MCP server's documentation): letters, digits and `-` only.
STRICT_NAME = re.compile(r"[A-Za-z0-9-]*")


@dataclass(frozen=True)
class PortSpec:
    port: int
    type: str  # http | tcp


@dataclass
class CreateRequest:
    """A create body that passed the field rules, normalised (rootfsSize >= 10, ports parsed)."""

    product_id: str
    gpu_num: int
    rootfs_size: int
    image_url: str
    kind: str
    name: str = ""
    image_auth: str = ""
    image_auth_id: str = ""
    ports: list[PortSpec] = field(default_factory=list)
    envs: list[dict[str, str]] = field(default_factory=list)
    tools: list[dict[str, Any]] = field(default_factory=list)
    command: str = ""
    entrypoint: str = ""
    cluster_id: str = ""
    network_storages: list[dict[str, str]] = field(default_factory=list)
    network_id: str = ""
    month: int = 0
    billing_mode: str = "onDemand"
    auto_renew: bool = False
    auto_renew_month: int = 0
    min_cuda_version: str = ""


def _str(body: dict[str, Any], key: str, *, required: bool = False, max_len: int = 255) -> str:
    value = body.get(key)
    if value is None or (value == "" and not required):
        if required:
            raise invalid_param(key, "is required")
        return ""
    if not isinstance(value, str):
        raise invalid_param(key, "must be a string")
    if required and not value.strip():
        raise invalid_param(key, "is required")
    if len(value) > max_len:
        raise invalid_param(key, f"must be at most {max_len} characters")
    return value


def _int(body: dict[str, Any], key: str, *, required: bool = False, default: int = 0) -> int:
    value = body.get(key)
    if value is None:
        if required:
            raise invalid_param(key, "is required")
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid_param(key, "must be an integer")
    return value


def _parse_ports(text: str) -> list[PortSpec]:
    ports: list[PortSpec] = []
    for raw in text.split(","):
        item = raw.strip()
        if not item:
            continue
        number, _, proto = item.partition("/")
        proto = proto.strip().lower() or "tcp"
        if not number.strip().isdigit() or proto not in ("tcp", "http"):
            raise invalid_param("ports", f"bad entry {item!r}: expected port/tcp or port/http")
        port = int(number)
        if not 1 <= port <= 65535:
            raise invalid_param("ports", f"port {port} is out of range 1-65535")
        if port in RESERVED_PORTS:
            raise invalid_param("ports", f"port {port} is reserved (2222-2224)")
        ports.append(PortSpec(port, proto))
    return ports


def _parse_envs(value: Any) -> list[dict[str, str]]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise invalid_param("envs", "must be an array of {key, value}")
    if len(value) > 100:
        raise invalid_param("envs", "at most 100 entries")
    envs = []
    for item in value:
        if not isinstance(item, dict):
            raise invalid_param("envs", "must be an array of {key, value}")
        key, val = item.get("key", ""), item.get("value", "")
        if not isinstance(key, str) or not isinstance(val, str):
            raise invalid_param("envs", "key and value must be strings")
        if len(key) > 511 or len(val) > 4095:
            raise invalid_param("envs", "key at most 511 and value at most 4095 characters")
        envs.append({"key": key, "value": val})
    return envs


def _parse_tools(value: Any) -> list[dict[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise invalid_param("tools", "must be an array of {name, port, type}")
    tools = []
    for item in value:
        if not isinstance(item, dict):
            raise invalid_param("tools", "must be an array of {name, port, type}")
        port, kind = str(item.get("port", "")), item.get("type", "http")
        if item.get("name") != "Jupyter":
            raise invalid_param("tools", "name must be Jupyter")
        if not port.isdigit() or not 1 <= int(port) <= 65535 or int(port) in RESERVED_PORTS:
            raise invalid_param("tools", f"bad port {port!r}")
        if kind not in ("tcp", "http"):
            raise invalid_param("tools", "type must be tcp or http")
        tools.append({"name": "Jupyter", "port": port, "type": kind})
    return tools


def _parse_storages(value: Any) -> list[dict[str, str]]:
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > 30:
        raise invalid_param("networkStorages", "must be an array of at most 30 {Id, mountPoint}")
    storages = []
    for item in value:
        if not isinstance(item, dict) or not isinstance(item.get("Id"), str) or not item["Id"]:
            raise invalid_param("networkStorages", "each entry needs an Id")
        mount = item.get("mountPoint") or "/network"
        storages.append({"Id": item["Id"], "mountPoint": str(mount)})
    return storages


def validate_create(body: Any, *, strict_names: bool = False) -> CreateRequest:
    """Check a create body against §3.3; raise `SimulatorError` (VALIDATOR_PARAM) on the first
    bad field, in the table's order. `strict_names`: the reading `name_rule: strict`."""
    if not isinstance(body, dict):
        raise invalid_param("body", "must be a JSON object")
    name = _str(body, "name")
    if strict_names and not STRICT_NAME.fullmatch(name):
        raise invalid_param("name", "may contain only letters, digits and '-'")
    product_id = _str(body, "productId", required=True)
    gpu_num = _int(body, "gpuNum", required=True)
    if not 1 <= gpu_num <= 8:
        raise invalid_param("gpuNum", "must be between 1 and 8")
    rootfs = _int(body, "rootfsSize", required=True)
    if rootfs > 6144:
        raise invalid_param("rootfsSize", "must be at most 6144")
    image_url = _str(body, "imageUrl", required=True, max_len=500)
    image_auth = _str(body, "imageAuth", max_len=10239)
    image_auth_id = _str(body, "imageAuthId")
    ports = _parse_ports(_str(body, "ports", max_len=2047))
    envs = _parse_envs(body.get("envs"))
    tools = _parse_tools(body.get("tools"))
    if len({p.port for p in ports} | {int(t["port"]) for t in tools}) > MAX_PORTS:
        raise invalid_param("ports", f"ports and tools may use at most {MAX_PORTS} ports")
    command = _str(body, "command", max_len=2047)
    entrypoint = _str(body, "entrypoint", max_len=2047)
    cluster_id = _str(body, "clusterId")
    storages = _parse_storages(body.get("networkStorages"))
    network_id = _str(body, "networkId")
    kind = _str(body, "kind", required=True)
    if kind not in ("gpu", "cpu"):
        raise invalid_param("kind", "must be gpu or cpu")
    month = _int(body, "month")
    if month < 0:
        raise invalid_param("month", "must be >= 0")
    billing_mode = _str(body, "billingMode") or "onDemand"
    if billing_mode not in BILLING_MODES:
        raise invalid_param("billingMode", "must be onDemand, monthly or spot")
    if month > 0:
        billing_mode = "monthly"
    auto_renew = body.get("autoRenew", False)
    if not isinstance(auto_renew, bool):
        raise invalid_param("autoRenew", "must be a boolean")
    auto_renew_month = _int(body, "autoRenewMonth")
    if auto_renew and billing_mode == "monthly" and not 1 <= auto_renew_month <= 12:
        raise invalid_param("autoRenewMonth", "must be between 1 and 12")
    return CreateRequest(
        product_id=product_id,
        gpu_num=gpu_num,
        rootfs_size=max(rootfs, 10),
        image_url=image_url,
        kind=kind,
        name=name,
        image_auth=image_auth,
        image_auth_id=image_auth_id,
        ports=ports,
        envs=envs,
        tools=tools,
        command=command,
        entrypoint=entrypoint,
        cluster_id=cluster_id,
        network_storages=storages,
        network_id=network_id,
        month=month,
        billing_mode=billing_mode,
        auto_renew=auto_renew,
        auto_renew_month=auto_renew_month,
        min_cuda_version=_str(body, "minCudaVersion"),
    )
