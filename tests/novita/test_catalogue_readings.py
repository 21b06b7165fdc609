"""The catalogue under the readings of /products (novita-api.md §12 #2, #3), against the simulator.

`products_default_billing=onDemand`: without billingMethod the spot-only product is missing and
spot prices read "0", so the old catalogue (one cached listing without parameters) found no spot
offer at all. `product_ids=spanning`: availability without clusterId is product-wide.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from novita_manager.domain.offers import NoOffer
from novita_manager.metrics import Metrics
from novita_manager.novita import NovitaClient
from novita_manager.novita.catalogue import Catalogue
from novita_manager.novita.models import Cluster
from novita_manager.simulator.server import SimulatorServer

HK = Cluster.model_validate({"id": "cn-hongkong-1", "name": "CN-HK-01"})
IN = Cluster.model_validate({"id": "as-in-1", "name": "AS-IN-01"})


@pytest.fixture
async def catalogue(simulator: SimulatorServer) -> AsyncIterator[Catalogue]:
    client = NovitaClient(base_url=simulator.base_url, api_key=simulator.api_key or "sk_test")
    async with client:
        yield Catalogue(client, ttl=60, metrics=Metrics())


def product_calls(simulator: SimulatorServer) -> int:
    return sum(simulator.control.stats()["calls"].get("GET /products", {}).values())


@pytest.mark.parametrize("simulator_profile", ["adverse", "lenient"], indirect=True)
async def test_products_are_cached_per_billing_method_and_cluster(
    simulator: SimulatorServer, catalogue: Catalogue
) -> None:
    spot = await catalogue.products(billing_method="spot", cluster_id=HK.id)
    assert await catalogue.products(billing_method="spot", cluster_id=HK.id) == spot
    assert product_calls(simulator) == 1
    await catalogue.products(billing_method="onDemand", cluster_id=HK.id)
    await catalogue.products(billing_method="spot", cluster_id=None)
    assert product_calls(simulator) == 3
    offers = await catalogue.ranked_offers(
        product_name="RTX 4090 24GB", cluster=HK, billing_mode="spot", rootfs_size=60
    )
    assert offers[0].cluster_id == HK.id
    assert [o.price_per_gpu_hour for o in offers] == sorted(o.price_per_gpu_hour for o in offers)


@pytest.mark.parametrize("simulator_profile", ["adverse", "lenient"], indirect=True)
async def test_availability_is_the_clusters(
    simulator: SimulatorServer, catalogue: Catalogue
) -> None:
    """Under spanning ids the cheapest family has stock elsewhere but not in HK: asked per
    cluster it is not offered there."""
    simulator.control.set_capacity(0, product_id="4090.16c62g.hk1", cluster_id=HK.id)
    offers = await catalogue.ranked_offers(
        product_name="RTX 4090 24GB", cluster=HK, billing_mode="spot", rootfs_size=60
    )
    assert not any(o.product_id.startswith("4090.16c62g") for o in offers)
    assert offers


@pytest.mark.parametrize("simulator_profile", ["adverse", "lenient"], indirect=True)
async def test_a_product_missing_from_the_region_is_no_offer_there(catalogue: Catalogue) -> None:
    with pytest.raises(NoOffer) as raised:
        await catalogue.ranked_offers(
            product_name="H100 80GB", cluster=IN, billing_mode="spot", rootfs_size=60
        )
    assert raised.value.kind == "no_offer_in_region"
    with pytest.raises(NoOffer) as unknown:
        await catalogue.ranked_offers(
            product_name="Voodoo 2", cluster=IN, billing_mode="spot", rootfs_size=60
        )
    assert unknown.value.kind == "unknown_product"
