"""Instance endpoints over HTTP: shapes (§3.3-§3.6), lifecycle (§5), paging, errors."""

from __future__ import annotations

import re
import time

import httpx
import pytest

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

LIST_FIELDS = {
    "id", "name", "clusterId", "clusterName", "status", "imageUrl", "imageAuthId", "command",
    "entrypoint", "cpuNum", "memory", "gpuNum", "portMappings", "productId", "productName",
    "rootfsSize", "volumeMounts", "envs", "kind", "billingMode", "endTime", "spotStatus",
    "spotReclaimTime", "createdAt",
}  # fmt: skip
GET_FIELDS = LIST_FIELDS | {
    "network", "node", "jobs", "connectComponentSSH", "connectComponentWebTerminal",
    "connectComponentJupyter", "connectComponentLog", "freeStorageSize", "keepDataDay",
}  # fmt: skip


def test_create_returns_only_an_id(simulator_http: httpx.Client) -> None:
    reply = simulator_http.post(CREATE, json=create_body())
    assert reply.status_code == 200
    body = reply.json()
    assert set(body) == {"id"}
    assert re.fullmatch(r"[0-9a-f]{16}", body["id"])


def test_instance_shape_when_running(simulator_http: httpx.Client) -> None:
    iid = create(simulator_http, gpuNum=2)
    body, _ = wait_status(simulator_http, iid, "running")
    assert set(body) >= GET_FIELDS
    assert (body["cpuNum"], body["memory"], body["gpuNum"]) == ("32", "124", "2")
    assert body["rootfsSize"] == 60
    assert (body["clusterId"], body["clusterName"]) == ("cn-hongkong-1", "CN-HK-01")
    assert (body["productId"], body["productName"]) == ("4090.16c62g.hk1", "RTX 4090 24GB")
    assert body["envs"] == [{"key": "NM_REQUEST", "value": "abc"}]
    assert (body["billingMode"], body["endTime"], body["spotStatus"]) == ("onDemand", "-1", "")
    assert body["spotReclaimTime"] == "0"
    assert body["createdAt"].isdigit()
    assert abs(int(body["createdAt"]) - time.time()) < 60
    assert body["portMappings"] == [
        {"port": 8888, "endpoint": f"https://{iid}-8888.proxy.sim.novita.local", "type": "http"},
        {"port": 22, "endpoint": body["portMappings"][1]["endpoint"], "type": "tcp"},
    ]
    assert re.fullmatch(r"[\d.]+:\d+", body["portMappings"][1]["endpoint"])
    assert set(body["connectComponentSSH"]) == {"sshCommand", "password", "isRunning"}
    assert body["connectComponentSSH"]["isRunning"] is True
    assert set(body["connectComponentWebTerminal"]) == {
        "address", "username", "password", "isRunning"
    }  # fmt: skip
    assert body["connectComponentJupyter"]["port"] == 8888
    assert set(body["connectComponentLog"]) == {
        "systemLogAddress", "instanceLogAddress", "isRunning"
    }  # fmt: skip
    assert isinstance(body["node"], list)
    assert "statusError" not in body
    listed = simulator_http.get("/gpu/instances").json()["instances"][0]
    assert set(listed) >= LIST_FIELDS
    assert listed["envs"] == body["envs"]
    assert listed["portMappings"] == body["portMappings"]


def test_spot_instance_fields(simulator_http: httpx.Client) -> None:
    iid = create(simulator_http, billingMode="spot")
    body, _ = wait_status(simulator_http, iid, "running")
    assert (body["billingMode"], body["spotStatus"], body["spotReclaimTime"]) == (
        "spot", "running", "0"
    )  # fmt: skip


def test_autostart_lifecycle(simulator_http: httpx.Client) -> None:
    iid = create(simulator_http)
    _, seen = wait_status(simulator_http, iid, "running")
    assert seen[0] == "toCreate"
    assert seen[-2:] == ["pulling", "running"]
    assert set(seen) <= {"toCreate", "creating", "pulling", "running"}

    stop = action(simulator_http, "stop", iid)
    assert stop.json() == {"instanceId": iid, "state": "toStop"}
    _, seen = wait_status(simulator_http, iid, "exited")
    assert set(seen) <= {"toStop", "stopping", "exited"}

    assert action(simulator_http, "start", iid).json() == {"instanceId": iid, "state": "toStart"}
    _, seen = wait_status(simulator_http, iid, "running")
    assert set(seen) <= {"toStart", "starting", "pulling", "running"}

    assert action(simulator_http, "restart", iid).json()["state"] == "toRestart"
    _, seen = wait_status(simulator_http, iid, "running")
    assert set(seen) <= {"toRestart", "restarting", "running"}

    assert action(simulator_http, "migrate", iid).json()["state"] == "migrating"
    _, seen = wait_status(simulator_http, iid, "running")
    assert set(seen) <= {"migrating", "pulling", "running"}

    assert action(simulator_http, "delete", iid).json() == {"instanceId": iid, "state": "toRemove"}
    deadline = time.monotonic() + 5
    while (reply := simulator_http.get("/gpu/instance", params={"instanceId": iid})).is_success:
        assert reply.json()["status"] in {"toRemove", "removing"}
        assert time.monotonic() < deadline
        time.sleep(0.005)
    body = assert_error(reply, 404)
    assert body["message"] == "instance not found"
    assert simulator_http.get("/gpu/instances").json() == {"instances": [], "total": 0}
    assert_error(action(simulator_http, "stop", iid), 404)


def test_without_autostart_instance_waits_in_exited(
    simulator: SimulatorServer, simulator_http: httpx.Client
) -> None:
    simulator.control.set_config(autostart=False)
    iid = create(simulator_http)
    _, seen = wait_status(simulator_http, iid, "exited")
    assert set(seen) <= {"toCreate", "creating", "exited"}
    time.sleep(0.2)
    assert get(simulator_http, iid)["status"] == "exited"
    action(simulator_http, "start", iid)
    _, seen = wait_status(simulator_http, iid, "running")
    assert set(seen) <= {"toStart", "starting", "pulling", "running"}


def test_invalid_state_changes(simulator_http: httpx.Client) -> None:
    iid = create(simulator_http)
    wait_status(simulator_http, iid, "running")
    body = assert_error(action(simulator_http, "start", iid), 400, "INVALID_STATE_CHANGE")
    assert body["message"] == "invalid state change"
    action(simulator_http, "stop", iid)
    wait_status(simulator_http, iid, "exited")
    for name in ("stop", "restart"):
        assert_error(action(simulator_http, name, iid), 400, "INVALID_STATE_CHANGE")


def test_unknown_instance_is_404(simulator_http: httpx.Client) -> None:
    reply = simulator_http.get("/gpu/instance", params={"instanceId": "0123456789abcdef"})
    assert assert_error(reply, 404)["message"] == "instance not found"
    for name in ("start", "stop", "restart", "delete", "migrate"):
        assert_error(action(simulator_http, name, "0123456789abcdef"), 404)
    assert_error(simulator_http.post("/gpu/instance/stop", json={}), 400, "VALIDATOR_PARAM")


def test_delete_from_creating(simulator_http: httpx.Client) -> None:
    iid = create(simulator_http)
    assert action(simulator_http, "delete", iid).json()["state"] == "toRemove"


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"productId": None}, "productId"),
        ({"gpuNum": 9}, "gpuNum"),
        ({"rootfsSize": 100_000}, "rootfsSize"),
        ({"imageUrl": None}, "imageUrl"),
        ({"kind": "tpu"}, "kind"),
        ({"ports": "2223/tcp"}, "ports"),
        ({"envs": [{"key": "K", "value": "v"}] * 101}, "envs"),
        ({"billingMode": "yearly"}, "billingMode"),
    ],
)
def test_create_validation(
    simulator_http: httpx.Client, overrides: dict[str, object], field: str
) -> None:
    body = {k: v for k, v in create_body(**overrides).items() if v is not None}
    error = assert_error(simulator_http.post(CREATE, json=body), 400, "VALIDATOR_PARAM")
    assert field in error["message"]
    assert error["metadata"]["field"] == field


def test_create_with_bad_json(simulator_http: httpx.Client) -> None:
    reply = simulator_http.post(CREATE, content=b"{nope", headers={"Content-Type": "text/plain"})
    assert_error(reply, 400, "VALIDATOR_PARAM")


def test_unknown_product_and_stock(simulator_http: httpx.Client) -> None:
    assert_error(
        simulator_http.post(CREATE, json=create_body(productId="nope")), 400, "RESOURCE_NOT_FOUND"
    )
    not_here = create_body(productId="4090.16c62g.sgp2", clusterId="cn-hongkong-1")
    assert_error(simulator_http.post(CREATE, json=not_here), 400, "INSUFFICIENT_RESOURCE")
    no_stock = create_body(productId="4090.16c62g.in1", clusterId="as-in-1")
    assert_error(simulator_http.post(CREATE, json=no_stock), 400, "INSUFFICIENT_RESOURCE")


def test_pagination_until_total(simulator_http: httpx.Client) -> None:
    created = {create(simulator_http, name=f"page-{i:03d}") for i in range(250)}
    seen: list[str] = []
    page = 1
    while True:
        reply = simulator_http.get("/gpu/instances", params={"pageNum": page, "pageSize": 100})
        body = reply.json()
        assert body["total"] == 250
        seen += [item["id"] for item in body["instances"]]
        if len(seen) >= body["total"] or not body["instances"]:
            break
        page += 1
    assert page == 3
    assert len(seen) == 250
    assert set(seen) == created
    first = simulator_http.get("/gpu/instances", params={"pageNum": 0}).json()
    assert len(first["instances"]) == 10
    assert first["instances"][0]["id"] == seen[0]
    past_end = simulator_http.get("/gpu/instances", params={"pageNum": 99, "pageSize": 100})
    assert past_end.json() == {"instances": [], "total": 250}
    named = simulator_http.get("/gpu/instances", params={"name": "PAGE-00", "pageSize": 50})
    assert named.json()["total"] == 10
    by_status = simulator_http.get(
        "/gpu/instances", params={"status": "running", "productName": "4090"}
    )
    assert by_status.json()["total"] in range(251)
    assert_error(simulator_http.get("/gpu/instances", params={"pageSize": "x"}), 400)


def test_billing_accrues_while_running(
    simulator: SimulatorServer, simulator_http: httpx.Client
) -> None:
    iid = create(simulator_http, billingMode="spot")
    wait_status(simulator_http, iid, "running")
    action(simulator_http, "stop", iid)
    wait_status(simulator_http, iid, "exited")
    record = simulator.control.instances()[0]
    first = record["billedSeconds"]
    assert first > 0.4  # pulling (0.45 s at time scale 0.01) and some running
    assert record["accruedCostUsd"] == pytest.approx(first / 3600 * 0.175, rel=1e-3)
    time.sleep(0.1)
    assert simulator.control.instances()[0]["billedSeconds"] == first  # stopped: no more
