"""GET /api/offers, /api/regions and /api/templates against a real service and simulator."""

from __future__ import annotations

import time
from typing import Any

import httpx

from tests.fixtures.service import ServiceThread
from tests.fixtures.waiting import wait_for


def get(service: ServiceThread, path: str, **params: Any) -> httpx.Response:
    return httpx.get(f"{service.base_url}{path}", params=params, timeout=15)


def test_offers_are_what_a_create_can_pick(simulator, make_service) -> None:
    service = make_service(simulator.base_url)
    everything = get(service, "/api/offers").json()
    assert everything["stale"] is False
    offers = everything["offers"]
    assert everything["total"] == len(offers) > 0
    prices = [o["pricePerHour"] for o in offers]
    assert prices == sorted(prices)
    assert {o["billingMode"] for o in offers} == {"spot", "onDemand"}
    assert all(o["availability"] in {"high", "normal", "low", "unknown"} for o in offers)

    spot_hk = get(
        service, "/api/offers", productName="rtx 4090 24gb", region="CN-HK-01", billingMode="spot"
    ).json()["offers"]
    assert spot_hk
    assert {(o["region"], o["clusterId"], o["billingMode"]) for o in spot_hk} == {
        ("CN-HK-01", "cn-hongkong-1", "spot")
    }
    assert {o["productName"] for o in spot_hk} == {"RTX 4090 24GB"}
    four = get(
        service,
        "/api/offers",
        productName="RTX 4090 24GB",
        region="cn-hongkong-1",
        billingMode="spot",
        gpuNum=4,
    ).json()["offers"]
    assert [round(o["pricePerGpuHour"] * 4, 6) for o in four] == [o["pricePerHour"] for o in four]
    assert [o["productId"] for o in four] == [o["productId"] for o in spot_hk]

    # The cheapest offer is the one a create picks, at the price it records.
    created = httpx.post(
        f"{service.base_url}/api/instances",
        json={"name": "cheapest", "productName": "RTX 4090 24GB", "templateId": "1"},
        timeout=15,
    ).json()
    assert created["productId"] == spot_hk[0]["productId"]
    assert created["pricePerHour"] == spot_hk[0]["pricePerHour"]


def test_unknown_product_and_region_are_400_with_the_closest_names(simulator, make_service) -> None:
    service = make_service(simulator.base_url)
    typo = get(service, "/api/offers", productName="RTX 4909 24GB")
    assert typo.status_code == 400
    error = typo.json()["error"]
    assert error["code"] == "VALIDATION_ERROR"
    assert "RTX 4090 24GB" in error["details"][0]["closestNames"]
    assert "RTX 4090 24GB" in error["message"]

    region = get(service, "/api/offers", region="MARS-01")
    assert region.status_code == 400
    assert "CN-HK-01" in region.json()["error"]["message"]
    assert get(service, "/api/offers", gpuNum=9).status_code == 400
    assert get(service, "/api/offers", billingMode="monthly").status_code == 400


def test_regions_and_templates(simulator, simulator_http: httpx.Client, make_service) -> None:
    service = make_service(simulator.base_url)
    regions = get(service, "/api/regions").json()
    assert regions["stale"] is False
    assert {"id": "cn-hongkong-1", "name": "CN-HK-01"}.items() <= regions["regions"][0].items()
    templates = get(service, "/api/templates").json()
    assert templates["stale"] is False
    listed = templates["templates"]
    ids = [t["id"] for t in listed]
    assert "1" in ids
    assert len(ids) == len(set(ids))
    one = next(t for t in listed if t["id"] == "1")
    assert one["image"]
    assert all({"type", "ports"} <= port.keys() for port in one["ports"])
    # Every template the simulator has, across its pages (its page size is smaller).
    upstream_total = simulator_http.get("/templates").json()["total"]
    assert len(listed) == upstream_total


def test_the_last_list_is_served_stale_while_novita_is_down(simulator, make_service) -> None:
    service = make_service(simulator.base_url, CACHE_TTL="0.2", MAX_RETRY_ATTEMPTS="0")
    fresh = get(service, "/api/offers", region="CN-HK-01").json()
    assert get(service, "/api/regions").json()["stale"] is False
    assert get(service, "/api/templates").json()["stale"] is False
    simulator.control.set_faults([{"endpoint": "*", "kind": "error", "status": 503}])
    time.sleep(0.3)  # past CACHE_TTL: the next read asks Novita, which fails
    stale = get(service, "/api/offers", region="CN-HK-01").json()
    assert stale["stale"] is True
    assert stale["offers"] == fresh["offers"]
    assert get(service, "/api/regions").json()["stale"] is True
    assert get(service, "/api/templates").json()["stale"] is True
    simulator.control.set_faults([])  # fresh again once the circuit lets a call through
    wait_for(
        lambda: get(service, "/api/offers", region="CN-HK-01").json()["stale"] is False,
        10,
        "fresh offers",
    )
