"""The fixed figures of the simulated catalogue: clusters, GPU products, registry credentials.

Data only (templates are in templates.py, lookups in catalogue.py). One product entry per
(GPU offer, cluster), each with its own id (`4090.16c62g.hk1`), so a create's `productId`
alone names the cluster; `clusterId` must then agree (or be empty). The structure and prices
are fixed, which lets other tests rely on them:
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
Prices are in 1/100000 USD per GPU-hour.
"""

from __future__ import annotations

from novita_manager.simulator.catalogue_types import Cluster, Product, RegistryAuth

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
        id="cn-hongkong-1",
        name="CN-HK-01",
        label="Hong Kong",
        gpu_types=(GPU_4090, GPU_3090, GPU_A100, GPU_H100),
        network_storage=True,
        instance_network=True,
    ),
    Cluster(
        id="as-sgp-2",
        name="AS-SGP-02",
        label="Singapore",
        gpu_types=(GPU_4090, GPU_A100, GPU_L40S, GPU_A6000),
        network_storage=True,
        instance_network=False,
    ),
    Cluster(
        id="us-ca-6",
        name="US-CA-06",
        label="California",
        gpu_types=(GPU_4090, GPU_A100, GPU_H100, GPU_L40S),
        network_storage=True,
        instance_network=True,
    ),
    Cluster(
        id="as-in-1",
        name="AS-IN-01",
        label="Mumbai",
        gpu_types=(GPU_4090, GPU_3090, GPU_A100),
        network_storage=False,
        instance_network=False,
    ),
    Cluster(
        id="oc-au-1",
        name="OC-AU-01",
        label="Sydney",
        gpu_types=(GPU_4090, GPU_A100),
        network_storage=False,
        instance_network=False,
    ),
)

HK, SGP, USCA, IN, AU = CLUSTERS

PRODUCTS: tuple[Product, ...] = (
    Product(
        id="4090.16c62g.hk1",
        name=GPU_4090,
        cpu_per_gpu=16,
        memory_per_gpu=62,
        disk_per_gpu=250,
        regions=(HK.labelled,),
        price=35000,
        spot_price=17500,
        billing_methods=ALL,
        inventory_state="high",
    ),
    Product(
        id="4090.20c92g.hk1",
        name=GPU_4090,
        cpu_per_gpu=20,
        memory_per_gpu=92,
        disk_per_gpu=400,
        regions=(HK.labelled,),
        price=39000,
        spot_price=21000,
        billing_methods=ALL,
        inventory_state="normal",
        max_rootfs=1000,
    ),
    Product(
        id="4090.16c62g.sgp2",
        name=GPU_4090,
        cpu_per_gpu=16,
        memory_per_gpu=62,
        disk_per_gpu=250,
        regions=(SGP.labelled,),
        price=36000,
        spot_price=19000,
        billing_methods=ALL,
        inventory_state="low",
    ),
    Product(
        id="4090.16c62g.usca6",
        name=GPU_4090,
        cpu_per_gpu=16,
        memory_per_gpu=62,
        disk_per_gpu=250,
        regions=(USCA.name,),  # the older bare region form
        price=38000,
        spot_price=20500,
        billing_methods=ALL,
        inventory_state="normal",
    ),
    Product(
        id="4090.16c62g.in1",
        name=GPU_4090,
        cpu_per_gpu=16,
        memory_per_gpu=62,
        disk_per_gpu=250,
        regions=(IN.labelled,),
        price=33000,
        spot_price=17800,
        billing_methods=ALL,
        inventory_state="none",
        max_gpu_num=4,
    ),
    Product(
        id="4090.16c62g.au1",
        name=GPU_4090,
        cpu_per_gpu=16,
        memory_per_gpu=62,
        disk_per_gpu=250,
        regions=(AU.labelled,),
        price=34000,
        spot_price=17600,
        billing_methods=ALL,
        inventory_state="low",
        available_deploy=False,
        max_gpu_num=4,
    ),
    Product(
        id="3090.16c62g.hk1",
        name=GPU_3090,
        cpu_per_gpu=16,
        memory_per_gpu=62,
        disk_per_gpu=200,
        regions=(HK.labelled,),
        price=21000,
        spot_price=11000,
        billing_methods=ALL,
        inventory_state="high",
    ),
    Product(
        id="3090.12c46g.in1",
        name=GPU_3090,
        cpu_per_gpu=12,
        memory_per_gpu=46,
        disk_per_gpu=200,
        regions=(IN.labelled,),
        price=19000,
        spot_price=None,
        billing_methods=NO_SPOT,
        inventory_state="normal",
        max_gpu_num=4,
    ),
    Product(
        id="A100-80GB.14c240g",
        name=GPU_A100,
        cpu_per_gpu=14,
        memory_per_gpu=240,
        disk_per_gpu=800,
        regions=(),  # every cluster
        price=160000,
        spot_price=96000,
        billing_methods=ALL,
        inventory_state="normal",
        max_rootfs=2000,
    ),
    Product(
        id="H100-80GB.16c200g.usca6",
        name=GPU_H100,
        cpu_per_gpu=16,
        memory_per_gpu=200,
        disk_per_gpu=1000,
        regions=(USCA.labelled,),
        price=249000,
        spot_price=150000,
        billing_methods=ALL,
        inventory_state="low",
        max_rootfs=2000,
    ),
    Product(
        id="H100-80GB.16c200g.hk1",
        name=GPU_H100,
        cpu_per_gpu=16,
        memory_per_gpu=200,
        disk_per_gpu=1000,
        regions=(HK.labelled,),
        price=259000,
        spot_price=0,
        billing_methods=NO_SPOT,
        inventory_state="high",
        max_rootfs=2000,
    ),
    Product(
        id="L40S.16c62g.sgp2",
        name=GPU_L40S,
        cpu_per_gpu=16,
        memory_per_gpu=62,
        disk_per_gpu=300,
        regions=(SGP.labelled,),
        price=86000,
        spot_price=43000,
        billing_methods=ALL,
        inventory_state="normal",
    ),
    Product(
        id="L40S.16c62g.usca6",
        name=GPU_L40S,
        cpu_per_gpu=16,
        memory_per_gpu=62,
        disk_per_gpu=300,
        regions=(USCA.labelled,),
        price=89000,
        spot_price=None,
        billing_methods=("onDemand",),
        inventory_state="high",
    ),
    Product(
        id="A6000.8c45g.sgp2",
        name=GPU_A6000,
        cpu_per_gpu=8,
        memory_per_gpu=45,
        disk_per_gpu=200,
        regions=(SGP.labelled,),
        price=30000,
        spot_price=12000,
        billing_methods=("spot",),  # spot-only
        inventory_state="normal",
    ),
)

REGISTRY_AUTHS: tuple[RegistryAuth, ...] = (
    RegistryAuth(
        id="ra-5d1c7a02",
        name="team-registry",
        username="team-bot",
        password="sim-registry-password",  # noqa: S106 - a simulated credential
    ),
    RegistryAuth(
        id="ra-9e44b310",
        name="dockerhub-mirror",
        username="mirror",
        password="sim-mirror-password",  # noqa: S106 - a simulated credential
    ),
)
