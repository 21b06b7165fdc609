"""The `/_simulator` control API: reset, config, capacity, reclaim, fail, instances."""

from __future__ import annotations

import httpx
import pytest

from novita_manager.simulator.server import SimulatorServer
from tests.simulator.helpers import CREATE, assert_error, create, create_body, get, wait_status


def test_reset_clears_and_reseeds(simulator: SimulatorServer, simulator_http: httpx.Client) -> None:
    first = create(simulator_http)
    simulator.control.set_capacity(0, product_id="4090.16c62g.hk1")
    simulator.control.reset()
    assert simulator_http.get("/gpu/instances").json()["total"] == 0
    assert simulator.control.instances() == []
    assert create(simulator_http) == first  # same seed, same ids
    simulator.control.reset(seed=43)
    assert create(simulator_http) != first


def test_config_changes_time_scale_and_autostart(simulator: SimulatorServer) -> None:
    config = simulator.control.set_config(autostart=False, time_scale=0.5)
    assert config["autostart"] is False
    assert config["timeScale"] == 0.5
    config = simulator.control.reset(autostart=True, time_scale=0.01)
    assert config == {
        "seed": 42,
        "timeScale": 0.01,
        "autostart": True,
        "apiKeyRequired": False,
        "profile": "classic",
        "reclaimLeadTime": 30.0,
    }


def test_capacity_exhaustion(simulator: SimulatorServer, simulator_http: httpx.Client) -> None:
    simulator.control.set_capacity(2, product_id="4090.16c62g.hk1", cluster_id="cn-hongkong-1")
    create(simulator_http)
    create(simulator_http)
    error = assert_error(
        simulator_http.post(CREATE, json=create_body()), 400, "INSUFFICIENT_RESOURCE"
    )
    assert error["metadata"]["productId"] == "4090.16c62g.hk1"
    products = simulator_http.get("/products", params={"clusterId": "cn-hongkong-1"}).json()
    hk = next(p for p in products["data"] if p["id"] == "4090.16c62g.hk1")
    assert hk["availableDeploy"] is False
    simulator.control.set_capacity(None, product_id="4090.16c62g.hk1", cluster_id="cn-hongkong-1")
    create(simulator_http)


def test_reclaim_sequence(simulator: SimulatorServer, simulator_http: httpx.Client) -> None:
    iid = create(simulator_http, billingMode="spot")
    wait_status(simulator_http, iid, "running")
    simulator.control.reclaim(iid)
    notified = get(simulator_http, iid)
    assert notified["spotStatus"] == "notified"
    assert notified["spotReclaimTime"] != "0"
    seen_spot = {notified["spotStatus"]}
    body, _ = wait_status(simulator_http, iid, "stopping")
    seen_spot.add(body["spotStatus"])
    body, _ = wait_status(simulator_http, iid, "exited")
    assert (body["spotStatus"], body["spotReclaimTime"]) == (
        "terminated",
        notified["spotReclaimTime"],
    )
    assert seen_spot == {"notified", "reclaiming"}
    listed = simulator_http.get("/gpu/instances").json()["instances"][0]
    assert listed["spotStatus"] == "terminated"
    assert_error(
        simulator_http.post("/gpu/instance/start", json={"instanceId": iid}),
        400,
        "INSUFFICIENT_RESOURCE",
    )
    simulator_http.post("/gpu/instance/migrate", json={"instanceId": iid})
    body, _ = wait_status(simulator_http, iid, "running")
    assert (body["spotStatus"], body["spotReclaimTime"]) == ("running", "0")


def test_reclaim_non_spot_is_refused(
    simulator: SimulatorServer, simulator_http: httpx.Client
) -> None:
    iid = create(simulator_http)
    with pytest.raises(httpx.HTTPStatusError):
        simulator.control.reclaim(iid)


def test_fail_shows_status_error(simulator: SimulatorServer, simulator_http: httpx.Client) -> None:
    iid = create(simulator_http)
    simulator.control.fail(iid, state="pulling", message="image not found")
    body = get(simulator_http, iid)
    assert body["status"] == "exited"
    assert body["statusError"] == {"state": "pulling", "message": "image not found"}
    listed = simulator_http.get("/gpu/instances").json()["instances"][0]
    assert listed["statusError"] == body["statusError"]
    with pytest.raises(httpx.HTTPStatusError):
        simulator.control.fail("ffffffffffffffff")


def test_all_instances_include_removed_with_cost(
    simulator: SimulatorServer, simulator_http: httpx.Client
) -> None:
    kept = create(simulator_http)
    gone = create(simulator_http)
    wait_status(simulator_http, gone, "running")
    simulator_http.post("/gpu/instance/delete", json={"instanceId": gone})
    for _ in range(200):
        if simulator_http.get("/gpu/instance", params={"instanceId": gone}).status_code == 404:
            break
    records = {r["id"]: r for r in simulator.control.instances()}
    assert records[gone]["removed"] is True
    assert records[kept]["removed"] is False
    assert records[gone]["billedSeconds"] > 0
    assert records[gone]["accruedCostUsd"] > 0
    assert records[gone]["status"] == "removed"
