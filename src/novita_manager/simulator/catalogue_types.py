"""The catalogue's value types and how each is shown on Novita's API.

Kept apart from the figures (catalogue_data.py, templates.py) and the lookups (catalogue.py)
so the data can be read as data and the types reused by instances without either. Every type
takes keyword arguments only, so each figure is named where it is written.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

CATALOGUE_EPOCH = 1_735_689_600  # 2025-01-01T00:00:00Z; templates were created after it
# Cluster suffixes of per-cluster product ids; a family id is the id without one.
CLUSTER_SUFFIXES = frozenset({"hk1", "sgp2", "usca6", "in1", "au1"})


@dataclass(frozen=True, kw_only=True)
class Cluster:
    id: str
    name: str  # region code users know, e.g. CN-HK-01
    label: str  # city shown in product regions, e.g. "Hong Kong"
    gpu_types: tuple[str, ...]
    network_storage: bool
    instance_network: bool

    @property
    def labelled(self) -> str:
        return f"{self.name} ({self.label})"

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "availableGpuType": list(self.gpu_types),
            "supportNetworkStorage": self.network_storage,
            "supportInstanceNetwork": self.instance_network,
        }


@dataclass(frozen=True, kw_only=True)
class Product:
    """One GPU offer in one cluster (or in every cluster when `regions` is empty)."""

    id: str
    name: str
    cpu_per_gpu: int
    memory_per_gpu: int
    disk_per_gpu: int
    regions: tuple[str, ...]  # as served: labelled or bare cluster names; empty = everywhere
    price: int  # 1/100000 USD per GPU-hour
    spot_price: int | None  # None: field left out; 0: "0" (no spot either way)
    billing_methods: tuple[str, ...]
    inventory_state: str
    available_deploy: bool = True
    max_gpu_num: int = 8
    min_rootfs: int = 10
    max_rootfs: int = 500

    @property
    def supports_spot(self) -> bool:
        return "spot" in self.billing_methods and bool(self.spot_price)

    @property
    def family(self) -> str:
        """The id shared by this offer's entries in every cluster (`4090.16c62g`)."""
        stem, _, suffix = self.id.rpartition(".")
        return stem if stem and suffix in CLUSTER_SUFFIXES else self.id

    def offers(self, billing_method: str | None) -> bool:
        """Whether a `billingMethod` filter keeps this entry (spot needs a spot price too)."""
        if not billing_method:
            return True
        if billing_method not in self.billing_methods:
            return False
        return billing_method != "spot" or self.supports_spot


@dataclass(frozen=True, kw_only=True)
class Template:
    id: str
    name: str
    channel: str
    image: str
    ports: tuple[tuple[str, tuple[int, ...]], ...]
    envs: tuple[tuple[str, str], ...] = ()
    tools: tuple[dict[str, Any], ...] = ()
    image_auth: str = ""
    start_command: str = ""
    rootfs_size: int = 60
    recommend_cards: tuple[tuple[str, str], ...] = ()
    min_cuda_version: str = ""
    readme: str = ""
    created_at: int = CATALOGUE_EPOCH

    def to_json(self) -> dict[str, Any]:
        return {
            "Id": self.id,
            "name": self.name,
            "readme": self.readme,
            "type": "instance",
            "channel": self.channel,
            "image": self.image,
            "imageAuth": self.image_auth,
            "startCommand": self.start_command,
            "entrypoint": "",
            "rootfsSize": self.rootfs_size,
            "ports": [{"type": kind, "ports": list(ports)} for kind, ports in self.ports],
            "envs": [{"key": key, "value": value} for key, value in self.envs],
            "tools": [dict(tool) for tool in self.tools],
            "createdAt": str(self.created_at),
            "recommendCards": [
                {"gpuSpecId": spec, "cardNum": num} for spec, num in self.recommend_cards
            ],
            "minCudaVersion": self.min_cuda_version,
        }


@dataclass(frozen=True, kw_only=True)
class RegistryAuth:
    id: str
    name: str
    username: str
    password: str

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "username": self.username,
            "password": self.password,
        }
