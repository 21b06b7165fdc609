"""Spot life in the simulator: reclaim notices with a lead time, reclaims on schedule, capacity
that changes over time, and the record of live instances per marker (simulator/spot_life.py)."""

from __future__ import annotations

import time

import httpx

from novita_manager.simulator.server import SimulatorServer
from tests.simulator.helpers import (
    CREATE,
    action,
    assert_error,
    create,
    create_body,
    get,
    wait_status,
)

MARKER = "NOVITA_MANAGER_ID"


def marked(client: httpx.Client, marker: str, **overrides: object) -> str:
    envs = [{"key": MARKER, "value": marker}]
    return create(client, billingMode="spot", envs=envs, **overrides)


def test_the_lead_time_sets_the_reclaim_time(
    simulator: SimulatorServer, simulator_http: httpx.Client
) -> None:
    iid = create(simulator_http, billingMode="spot")
    wait_status(simulator_http, iid, "running")
    before = time.time()
    simulator.control.reclaim(iid, lead_time=500)  # 500 simulated s = 5 s at scale 0.01
    notified = get(simulator_http, iid)
    assert notified["spotStatus"] == "notified"
    assert before + 4 <= int(notified["spotReclaimTime"]) <= time.time() + 6
    config = simulator.control.set_reclaim_lead(0)
    assert config["reclaimLeadTime"] == 0
    other = create(simulator_http, billingMode="spot")
    wait_status(simulator_http, other, "running")
    simulator.control.reclaim(other)
    body, _seen = wait_status(simulator_http, other, "exited")
    assert body["spotStatus"] == "terminated"
    simulator.control.reset()
    assert simulator.control.set_config()["reclaimLeadTime"] == 30.0


def test_a_scheduled_reclaim_happens_on_time_and_only_to_a_running_instance(
    simulator: SimulatorServer, simulator_http: httpx.Client
) -> None:
    iid = create(simulator_http, billingMode="spot")
    wait_status(simulator_http, iid, "running")
    answer = simulator.control.reclaim(iid, lead_time=0, after=30)  # 0.3 s
    assert "scheduledAt" in answer
    assert get(simulator_http, iid)["spotStatus"] == "running"
    body, _ = wait_status(simulator_http, iid, "exited", timeout=5)
    assert body["spotStatus"] == "terminated"
    assert simulator.control.live()["reclaimed"] == 1
    # due while stopped: dropped
    other = create(simulator_http, billingMode="spot")
    wait_status(simulator_http, other, "running")
    simulator.control.reclaim(other, after=20)
    action(simulator_http, "stop", other)
    time.sleep(0.4)
    assert get(simulator_http, other)["spotStatus"] == "running"
    assert simulator.control.live()["reclaimed"] == 1


def test_capacity_changes_on_schedule(
    simulator: SimulatorServer, simulator_http: httpx.Client
) -> None:
    simulator.control.set_capacity(0, cluster_id="cn-hongkong-1")
    assert_error(simulator_http.post(CREATE, json=create_body()), 400, "INSUFFICIENT_RESOURCE")
    simulator.control.set_capacity(2, cluster_id="cn-hongkong-1", after=20)  # 0.2 s
    assert_error(simulator_http.post(CREATE, json=create_body()), 400, "INSUFFICIENT_RESOURCE")
    time.sleep(0.3)
    create(simulator_http)
    products = simulator_http.get(
        "/products", params={"clusterId": "cn-hongkong-1", "billingMethod": "spot"}
    ).json()["data"]
    assert any(p["availableDeploy"] for p in products)


def test_migrate_is_refused_without_capacity(
    simulator: SimulatorServer, simulator_http: httpx.Client
) -> None:
    iid = create(simulator_http, billingMode="spot")
    wait_status(simulator_http, iid, "running")
    simulator.control.reclaim(iid, lead_time=0)
    wait_status(simulator_http, iid, "exited")
    simulator.control.set_capacity(0, cluster_id="cn-hongkong-1")
    refused = action(simulator_http, "migrate", iid)
    assert_error(refused, 400, "MIGRATE_INSUFFICIENT_RESOURCE")
    simulator.control.set_capacity(None, cluster_id="cn-hongkong-1")
    assert action(simulator_http, "migrate", iid).status_code == 200


def test_the_live_record_counts_instances_per_marker(
    simulator: SimulatorServer, simulator_http: httpx.Client
) -> None:
    first = marked(simulator_http, "m1")
    marked(simulator_http, "m2")
    action(simulator_http, "delete", first)
    action(simulator_http, "delete", first)  # repeated: counted once
    marked(simulator_http, "m1")
    record = simulator.control.live()
    assert record["live"] == {"m1": 1, "m2": 1}
    assert record["maxLive"] == {"m1": 1, "m2": 1}
    assert record["moments"] == 4
    marked(simulator_http, "m1")
    assert simulator.control.live()["maxLive"]["m1"] == 2
