"""The simulated catalogue: clusters, GPU products, templates and registry credentials.

One product entry per (GPU offer, cluster), each with its own id (`4090.16c62g.hk1`), so a
create's `productId` alone names the cluster; `clusterId` must then agree (or be empty). The
structure and prices are fixed, which lets other tests rely on them:
- "RTX 4090 24GB" in five clusters: the cheapest deployable spot is `4090.16c62g.hk1`
  (17500); `4090.20c92g.hk1` is a dearer CN-HK-01 entry; `4090.16c62g.in1` has
  `inventoryState: "none"`; `4090.16c62g.au1` has `availableDeploy: false`; `4090.16c62g.usca6`
  uses the older bare region form `"US-CA-06"`.
- `A100-80GB.14c240g` has `regions: []` (every cluster), on-demand "160000".
- Some entries offer no spot (`spotPrice` missing or "0", no `spot` in `billingMethods`).
- `A6000.8c45g.sgp2` ("RTX A6000 48GB") is spot-only (`billingMethods: ["spot"]`), so a listing
  limited to on-demand offers leaves it out (reading `products_default_billing`).
Under the reading `product_ids: spanning` the per-cluster entries of one offer form a *family*
whose id drops the cluster suffix (`4090.16c62g` spans HK, SGP, US-CA, IN and AU); each entry
stays the offer of its cluster (price, stock, billing methods, capacity).
The seed only changes template `createdAt` times here; it drives instance ids, cluster picks
and fault draws elsewhere.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

CATALOGUE_EPOCH = 1_735_689_600  # 2025-01-01T00:00:00Z; templates were created after it
# Cluster suffixes of per-cluster product ids; a family id is the id without one.
CLUSTER_SUFFIXES = frozenset({"hk1", "sgp2", "usca6", "in1", "au1"})
BILLING_ORDER = ("onDemand", "monthly", "spot")
INVENTORY_RANK = {"high": 3, "normal": 2, "low": 1, "none": 0}


@dataclass(frozen=True)
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


@dataclass(frozen=True)
class Product:
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


@dataclass(frozen=True)
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


@dataclass(frozen=True)
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


GPU_4090 = "RTX 4090 24GB"
GPU_3090 = "RTX 3090 24GB"
GPU_A100 = "A100 80GB"
GPU_H100 = "H100 80GB"
GPU_L40S = "L40S 48GB"
GPU_A6000 = "RTX A6000 48GB"

ALL = ("onDemand", "monthly", "spot")
NO_SPOT = ("onDemand", "monthly")

CLUSTERS: tuple[Cluster, ...] = (
    Cluster(
        "cn-hongkong-1",
        "CN-HK-01",
        "Hong Kong",
        (GPU_4090, GPU_3090, GPU_A100, GPU_H100),
        True,
        True,
    ),
    Cluster(
        "as-sgp-2",
        "AS-SGP-02",
        "Singapore",
        (GPU_4090, GPU_A100, GPU_L40S, GPU_A6000),
        True,
        False,
    ),
    Cluster(
        "us-ca-6", "US-CA-06", "California", (GPU_4090, GPU_A100, GPU_H100, GPU_L40S), True, True
    ),
    Cluster("as-in-1", "AS-IN-01", "Mumbai", (GPU_4090, GPU_3090, GPU_A100), False, False),
    Cluster("oc-au-1", "OC-AU-01", "Sydney", (GPU_4090, GPU_A100), False, False),
)

HK, SGP, USCA, IN, AU = CLUSTERS

PRODUCTS: tuple[Product, ...] = (
    Product("4090.16c62g.hk1", GPU_4090, 16, 62, 250, (HK.labelled,), 35000, 17500, ALL, "high"),
    Product(
        "4090.20c92g.hk1",
        GPU_4090,
        20,
        92,
        400,
        (HK.labelled,),
        39000,
        21000,
        ALL,
        "normal",
        max_rootfs=1000,
    ),
    Product("4090.16c62g.sgp2", GPU_4090, 16, 62, 250, (SGP.labelled,), 36000, 19000, ALL, "low"),
    Product("4090.16c62g.usca6", GPU_4090, 16, 62, 250, (USCA.name,), 38000, 20500, ALL, "normal"),
    Product(
        "4090.16c62g.in1",
        GPU_4090,
        16,
        62,
        250,
        (IN.labelled,),
        33000,
        17800,
        ALL,
        "none",
        max_gpu_num=4,
    ),
    Product(
        "4090.16c62g.au1",
        GPU_4090,
        16,
        62,
        250,
        (AU.labelled,),
        34000,
        17600,
        ALL,
        "low",
        available_deploy=False,
        max_gpu_num=4,
    ),
    Product("3090.16c62g.hk1", GPU_3090, 16, 62, 200, (HK.labelled,), 21000, 11000, ALL, "high"),
    Product(
        "3090.12c46g.in1",
        GPU_3090,
        12,
        46,
        200,
        (IN.labelled,),
        19000,
        None,
        NO_SPOT,
        "normal",
        max_gpu_num=4,
    ),
    Product(
        "A100-80GB.14c240g",
        GPU_A100,
        14,
        240,
        800,
        (),
        160000,
        96000,
        ALL,
        "normal",
        max_rootfs=2000,
    ),
    Product(
        "H100-80GB.16c200g.usca6",
        GPU_H100,
        16,
        200,
        1000,
        (USCA.labelled,),
        249000,
        150000,
        ALL,
        "low",
        max_rootfs=2000,
    ),
    Product(
        "H100-80GB.16c200g.hk1",
        GPU_H100,
        16,
        200,
        1000,
        (HK.labelled,),
        259000,
        0,
        NO_SPOT,
        "high",
        max_rootfs=2000,
    ),
    Product(
        "L40S.16c62g.sgp2", GPU_L40S, 16, 62, 300, (SGP.labelled,), 86000, 43000, ALL, "normal"
    ),
    Product(
        "L40S.16c62g.usca6",
        GPU_L40S,
        16,
        62,
        300,
        (USCA.labelled,),
        89000,
        None,
        ("onDemand",),
        "high",
    ),
    Product(
        "A6000.8c45g.sgp2",
        GPU_A6000,
        8,
        45,
        200,
        (SGP.labelled,),
        30000,
        12000,
        ("spot",),
        "normal",
    ),
)

REGISTRY_AUTHS: tuple[RegistryAuth, ...] = (
    RegistryAuth("ra-5d1c7a02", "team-registry", "team-bot", "sim-registry-password"),
    RegistryAuth("ra-9e44b310", "dockerhub-mirror", "mirror", "sim-mirror-password"),
)

_JUPYTER_TOOL = {
    "name": "Jupyter",
    "describe": "JupyterLab on port 8888",
    "port": 8888,
    "type": "http",
}


def _templates(rng: random.Random) -> tuple[Template, ...]:
    def when() -> int:
        return CATALOGUE_EPOCH + rng.randrange(0, 300 * 86_400)

    return (
        Template(
            "1",
            "PyTorch 2.4 (CUDA 12.4)",
            "official",
            "pytorch/pytorch:2.4.0-cuda12.4-cudnn9-runtime",
            (("http", (8888,)), ("tcp", (22,))),
            envs=(("JUPYTER_TOKEN", "novita"),),
            tools=(_JUPYTER_TOOL,),
            rootfs_size=60,
            recommend_cards=(("4090.16c62g.hk1", "1"), ("A100-80GB.14c240g", "1")),
            min_cuda_version="12.4",
            readme="# PyTorch\nJupyterLab on 8888, SSH on 22.",
            created_at=when(),
        ),
        Template(
            "2",
            "Ubuntu 22.04 + CUDA 12.4",
            "official",
            "nvidia/cuda:12.4.1-devel-ubuntu22.04",
            (("tcp", (22,)),),
            rootfs_size=30,
            recommend_cards=(("3090.16c62g.hk1", "1"),),
            min_cuda_version="12.4",
            readme="# CUDA base\nSSH on 22.",
            created_at=when(),
        ),
        Template(
            "3",
            "vLLM OpenAI server",
            "official",
            "vllm/vllm-openai:v0.6.3",
            (("http", (8000,)), ("tcp", (22,))),
            envs=(("MODEL", "Qwen/Qwen2.5-7B-Instruct"), ("MAX_MODEL_LEN", "8192")),
            rootfs_size=100,
            start_command="vllm serve $MODEL --port 8000",
            recommend_cards=(("4090.16c62g.hk1", "1"), ("H100-80GB.16c200g.usca6", "1")),
            min_cuda_version="12.1",
            readme="# vLLM\nOpenAI API on 8000.",
            created_at=when(),
        ),
        Template(
            "4",
            "Stable Diffusion WebUI",
            "community",
            "universonic/stable-diffusion-webui:latest",
            (("http", (7860,)),),
            rootfs_size=80,
            readme="# SD WebUI\nUI on 7860.",
            created_at=when(),
        ),
        Template(
            "5",
            "ComfyUI",
            "community",
            "yanwk/comfyui-boot:cu124-slim",
            (("http", (8188,)),),
            rootfs_size=80,
            readme="# ComfyUI",
            created_at=when(),
        ),
        Template(
            "101",
            "team-trainer (private)",
            "private",
            "registry.example.com/team/trainer:1.2",
            (("http", (6006,)), ("tcp", (22,))),
            envs=(("WANDB_MODE", "offline"),),
            image_auth=REGISTRY_AUTHS[0].id,
            rootfs_size=120,
            readme="# Private trainer image",
            created_at=when(),
        ),
    )


@dataclass
class Catalogue:
    """Everything fixed for a simulator's lifetime (rebuilt on reset with a new seed)."""

    clusters: tuple[Cluster, ...]
    products: tuple[Product, ...]
    templates: tuple[Template, ...]
    auths: tuple[RegistryAuth, ...]
    _product_by_id: dict[str, Product] = field(default_factory=dict)
    _cluster_by_key: dict[str, Cluster] = field(default_factory=dict)
    _families: dict[str, tuple[Product, ...]] = field(default_factory=dict)
    _singles: dict[str, tuple[Product, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._product_by_id = {product.id: product for product in self.products}
        self._singles = {product.id: (product,) for product in self.products}
        families: dict[str, list[Product]] = {}
        for product in self.products:
            families.setdefault(product.family, []).append(product)
        self._families = {key: tuple(entries) for key, entries in families.items()}
        for cluster in self.clusters:
            for key in (cluster.id, cluster.name, cluster.labelled):
                self._cluster_by_key[key.lower()] = cluster

    def product(self, product_id: str) -> Product | None:
        return self._product_by_id.get(product_id)

    def groups(self, spanning: bool) -> dict[str, tuple[Product, ...]]:
        """Public product id → its per-cluster entries: one entry per id (`per_cluster`) or
        one id per family spanning its clusters (`spanning`)."""
        return self._families if spanning else self._singles

    def known_product(self, product_id: str) -> bool:
        """Whether a capacity limit may name this id (an entry's id or a family id)."""
        return product_id in self._product_by_id or product_id in self._families

    def cluster(self, key: str) -> Cluster | None:
        """A cluster by id, bare name or labelled name, case-insensitively."""
        return self._cluster_by_key.get(key.strip().lower())

    def auth(self, auth_id: str) -> RegistryAuth | None:
        return next((auth for auth in self.auths if auth.id == auth_id), None)

    def template(self, template_id: str) -> Template | None:
        return next((tpl for tpl in self.templates if tpl.id == template_id), None)

    def product_clusters(self, product: Product) -> list[Cluster]:
        """Clusters a product is offered in (every cluster when its regions are empty)."""
        if not product.regions:
            return list(self.clusters)
        found = [self.cluster(region.split(" (")[0]) for region in product.regions]
        return [cluster for cluster in found if cluster is not None]


def build_catalogue(seed: int) -> Catalogue:
    rng = random.Random(f"catalogue:{seed}")
    return Catalogue(CLUSTERS, PRODUCTS, _templates(rng), REGISTRY_AUTHS)
