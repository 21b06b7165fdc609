"""Readings that shape instance objects: `list_shape`, `node_shape`, `tools_required` and
`status_error` (novita-api.md §12 #4, #6, #8, #9), each under the profile that sets it and
the opposite one."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from tests.simulator.helpers import action, create, get, wait_status

JUPYTER_TOOL = {"name": "Jupyter", "port": "8888", "type": "http"}
PRODUCT = {"adverse": "4090.16c62g", "lenient": "4090.16c62g.hk1"}


def _listed(client: httpx.Client, instance_id: str) -> dict[str, Any]:
    items = client.get("/gpu/instances", params={"pageSize": 10}).json()["instances"]
    return next(item for item in items if item["id"] == instance_id)


@pytest.mark.parametrize("simulator_profile", ["adverse"], indirect=True)
def test_reduced_list_items(simulator_http: httpx.Client) -> None:
    iid = create(simulator_http, productId=PRODUCT["adverse"], tools=[JUPYTER_TOOL])
    full, _ = wait_status(simulator_http, iid, "running")
    item = _listed(simulator_http, iid)
    assert item["portMappings"] == [{"port": 8888, "type": "http"}, {"port": 22, "type": "tcp"}]
    assert not [key for key in item if key.startswith("connectComponent")]
    assert "network" not in item
    assert "node" not in item
    for key in ("id", "name", "clusterId", "status", "productId", "gpuNum", "billingMode"):
        assert item[key] == full[key]
    assert all(m["endpoint"] for m in full["portMappings"])  # GET still has them
    assert full["connectComponentSSH"]["sshCommand"]
    assert "network" in full


@pytest.mark.parametrize("simulator_profile", ["lenient"], indirect=True)
def test_full_list_items(simulator_http: httpx.Client) -> None:
    iid = create(simulator_http)
    full, _ = wait_status(simulator_http, iid, "running")
    assert _listed(simulator_http, iid) == full


@pytest.mark.parametrize(
    ("simulator_profile", "shape"),
    [("adverse", "object"), ("lenient", "array")],
    indirect=["simulator_profile"],
)
def test_node_shape(simulator_http: httpx.Client, simulator_profile: str, shape: str) -> None:
    body = get(simulator_http, create(simulator_http, productId=PRODUCT[simulator_profile]))
    expected = {"maxRootfsSize": 500}
    assert body["node"] == (expected if shape == "object" else [expected])


@pytest.mark.parametrize("simulator_profile", ["adverse"], indirect=True)
def test_jupyter_needs_tools(simulator_http: httpx.Client) -> None:
    without = create(simulator_http, productId=PRODUCT["adverse"])  # ports has 8888/http
    with_tools = create(simulator_http, productId=PRODUCT["adverse"], tools=[JUPYTER_TOOL])
    bare, _ = wait_status(simulator_http, without, "running")
    tooled, _ = wait_status(simulator_http, with_tools, "running")
    assert "connectComponentJupyter" not in bare
    assert any(m["port"] == 8888 for m in bare["portMappings"])  # the port is still mapped
    jupyter = tooled["connectComponentJupyter"]
    assert jupyter["port"] == 8888
    assert jupyter["address"].startswith("https://")
    assert jupyter["isRunning"] is True


@pytest.mark.parametrize("simulator_profile", ["lenient"], indirect=True)
def test_jupyter_from_the_port_alone(simulator_http: httpx.Client) -> None:
    body, _ = wait_status(simulator_http, create(simulator_http), "running")
    assert body["connectComponentJupyter"]["address"].startswith("https://")


def _status_errors(
    client: httpx.Client, instance_id: str, until: str, timeout: float = 5.0
) -> list[tuple[str, dict[str, str] | None]]:
    """Every (status, statusError) pair seen, polling until `until`."""
    seen: list[tuple[str, dict[str, str] | None]] = []
    deadline = time.monotonic() + timeout
    while True:
        body = get(client, instance_id)
        pair = (body["status"], body.get("statusError"))
        if not seen or seen[-1] != pair:
            seen.append(pair)
        if body["status"] == until:
            return seen
        assert time.monotonic() < deadline, seen
        time.sleep(0.005)


@pytest.mark.parametrize("simulator_profile", ["adverse"], indirect=True)
def test_transient_status_error(simulator_http: httpx.Client) -> None:
    iid = create(simulator_http, productId=PRODUCT["adverse"])
    seen = dict(_status_errors(simulator_http, iid, "running"))
    assert seen["pulling"] == {"state": "pulling", "message": "retrying image pull"}
    assert seen["running"] is None  # cleared once running
    assert seen.get("creating") is None
    item = _listed(simulator_http, iid)
    assert "statusError" not in item
    action(simulator_http, "stop", iid)
    wait_status(simulator_http, iid, "exited")
    action(simulator_http, "start", iid)
    seen = dict(_status_errors(simulator_http, iid, "running"))
    assert seen["starting"] == {
        "state": "starting",
        "message": "waiting for the container to start",
    }
    assert seen["running"] is None


@pytest.mark.parametrize("simulator_profile", ["lenient"], indirect=True)
def test_status_error_only_when_fatal(simulator_http: httpx.Client) -> None:
    iid = create(simulator_http)
    assert all(error is None for _, error in _status_errors(simulator_http, iid, "running"))
