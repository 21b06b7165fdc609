"""Readings of the catalogue: `products_default_billing` and `product_ids` (novita-api.md §12
#2, #3). Under `spanning` one id covers several clusters; availability and prices are
product-wide unless `clusterId` is sent, and capacity is per cluster."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from novita_manager.simulator.server import SimulatorServer
from tests.simulator.helpers import CREATE, assert_error, create, create_body, get

SPOT_ONLY = "RTX A6000 48GB"


def _products(client: httpx.Client, **params: str) -> dict[str, dict[str, Any]]:
    reply = client.get("/products", params=params)
    assert reply.status_code == 200, reply.text
    return {p["id"]: p for p in reply.json()["data"]}


@pytest.mark.parametrize("simulator_profile", ["adverse"], indirect=True)
def test_default_billing_is_on_demand(simulator_http: httpx.Client) -> None:
    default = _products(simulator_http)
    assert SPOT_ONLY not in {p["name"] for p in default.values()}
    assert {p["spotPrice"] for p in default.values() if "spotPrice" in p} == {"0"}
    assert all("onDemand" in p["billingMethods"] for p in default.values())
    spot = _products(simulator_http, billingMethod="spot")
    assert SPOT_ONLY in {p["name"] for p in spot.values()}
    assert all(int(p["spotPrice"]) > 0 for p in spot.values())
    assert "3090.12c46g" not in spot  # no spot offer
    assert _products(simulator_http, billingMethod="onDemand").keys() == default.keys()


@pytest.mark.parametrize("simulator_profile", ["lenient"], indirect=True)
def test_default_billing_is_everything(simulator_http: httpx.Client) -> None:
    default = _products(simulator_http)
    assert default["A6000.8c45g.sgp2"]["billingMethods"] == ["spot"]
    assert default["4090.16c62g.hk1"]["spotPrice"] == "17500"
    spot = _products(simulator_http, billingMethod="spot")
    assert "A6000.8c45g.sgp2" in spot
    assert "3090.12c46g.in1" not in spot


@pytest.mark.parametrize("simulator_profile", ["adverse"], indirect=True)
def test_spanning_ids_product_wide_and_per_cluster(
    simulator: SimulatorServer, simulator_http: httpx.Client
) -> None:
    wide = _products(simulator_http, billingMethod="spot")
    assert "4090.16c62g.hk1" not in wide
    rtx = wide["4090.16c62g"]
    assert len(rtx["regions"]) == 5
    assert "CN-HK-01 (Hong Kong)" in rtx["regions"]
    assert rtx["spotPrice"] == "17500"  # the lowest among its clusters
    assert rtx["availableDeploy"] is True
    au = _products(simulator_http, billingMethod="spot", clusterId="oc-au-1")["4090.16c62g"]
    assert (au["availableDeploy"], au["spotPrice"]) == (False, "17600")
    assert au["regions"] == rtx["regions"]  # still every cluster of the product
    sgp = _products(simulator_http, billingMethod="spot", clusterId="as-sgp-2")["4090.16c62g"]
    assert (sgp["spotPrice"], sgp["inventoryState"]) == ("19000", "low")
    # No stock left in Hong Kong: the product stays deployable elsewhere, not there.
    simulator.control.set_capacity(0, product_id="4090.16c62g", cluster_id="cn-hongkong-1")
    assert _products(simulator_http)["4090.16c62g"]["availableDeploy"] is True
    hk = _products(simulator_http, clusterId="cn-hongkong-1")["4090.16c62g"]
    assert (hk["availableDeploy"], hk["inventoryState"]) == (False, "none")
    refused = simulator_http.post(CREATE, json=create_body(productId="4090.16c62g"))
    assert "INSUFFICIENT_RESOURCE" in assert_error(refused, 400)["message"]
    iid = create(simulator_http, productId="4090.16c62g", clusterId="as-sgp-2")
    body = get(simulator_http, iid)
    assert (body["productId"], body["clusterId"]) == ("4090.16c62g", "as-sgp-2")


@pytest.mark.parametrize("simulator_profile", ["adverse"], indirect=True)
def test_spanning_create_checks_the_cluster(simulator_http: httpx.Client) -> None:
    old_id = simulator_http.post(CREATE, json=create_body(productId="4090.16c62g.hk1"))
    assert_error(old_id, 400, "RESOURCE_NOT_FOUND")
    not_there = create_body(productId="4090.20c92g", clusterId="as-sgp-2")
    assert (
        "not available in this cluster"
        in assert_error(simulator_http.post(CREATE, json=not_there), 400)["message"]
    )
    # The H100 offers spot in US-CA-06 but not in CN-HK-01: billing is per cluster too.
    h100 = {"productId": "H100-80GB.16c200g", "billingMode": "spot"}
    hk = create_body(**h100, clusterId="cn-hongkong-1")
    assert_error(simulator_http.post(CREATE, json=hk), 400, "UNSUPPORTED_BILLING_MODE")
    create(simulator_http, **h100, clusterId="us-ca-6")
    # Without clusterId the platform picks a cluster offering the product.
    picked = get(simulator_http, create(simulator_http, productId="4090.16c62g", clusterId=""))
    assert picked["productId"] == "4090.16c62g"


@pytest.mark.parametrize("simulator_profile", ["lenient"], indirect=True)
def test_per_cluster_ids(simulator_http: httpx.Client) -> None:
    products = _products(simulator_http)
    assert "4090.16c62g" not in products
    assert products["4090.16c62g.hk1"]["regions"] == ["CN-HK-01 (Hong Kong)"]
    assert products["4090.16c62g.au1"]["availableDeploy"] is False
    iid = create(simulator_http)
    assert get(simulator_http, iid)["productId"] == "4090.16c62g.hk1"
    assert_error(simulator_http.post(CREATE, json=create_body(productId="4090.16c62g")), 400)
