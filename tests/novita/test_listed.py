"""The status sync's cheap reading of listing pages (`novita/listed.py`) equals the model's.

For every page the simulator serves under every profile, and for odd items, the listed reading
gives the same ids, markers, statuses, totals and observation summaries as
`InstancePage.model_validate`, and refuses exactly what the model refuses.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from novita_manager.domain.observations import summarize
from novita_manager.novita.create_request import MARKER_ENV, marker_of
from novita_manager.novita.listed import ListedPage, read_listed_instance, read_listed_page
from novita_manager.novita.models import Instance, InstancePage
from novita_manager.simulator import PROFILES


def assert_same(data: Any) -> ListedPage:
    model = InstancePage.model_validate(data)
    listed = read_listed_page(data)
    assert (listed.total, listed.total_reported) == (model.total, model.total_reported)
    assert [item.id for item in listed.instances] == [item.id for item in model.instances]
    for cheap, full in zip(listed.instances, model.instances, strict=True):
        assert cheap.status == full.status
        assert cheap.marker == marker_of(full.envs)
        assert cheap.has_connection_details == full.has_connection_details
        assert summarize(cheap) == summarize(full)
    return listed


def assert_same_instance(data: Any) -> None:
    """GET /gpu/instance's body read by `read_listed_instance` and by the model: one summary."""
    unwrapped = data["instance"] if "id" not in data and "instance" in data else data
    full = Instance.model_validate(unwrapped)
    cheap = read_listed_instance(data)
    assert (cheap.id, cheap.status) == (full.id, full.status)
    assert cheap.marker == marker_of(full.envs)
    assert summarize(cheap) == summarize(full)


def create(http: httpx.Client, marker: str, billing: str) -> str:
    products = http.get(
        "/products", params={"clusterId": "cn-hongkong-1", "billingMethod": billing}
    ).json()["data"]
    product_id = next(p["id"] for p in products if p["id"].startswith("4090.16c62g"))
    response = http.post(
        "/gpu/instance/create",
        json={
            "name": f"listed-{marker}",
            "productId": product_id,
            "clusterId": "cn-hongkong-1",
            "gpuNum": 1,
            "rootfsSize": 60,
            "imageUrl": "pytorch/pytorch:latest",
            "kind": "gpu",
            "billingMode": billing,
            "envs": [{"key": "A", "value": ""}, {"key": MARKER_ENV, "value": marker}],
            "ports": "8888/http,22/tcp",
        },
    )
    assert response.status_code == 200, response.text
    return str(response.json()["id"])


@pytest.mark.parametrize("simulator_profile", sorted(PROFILES), indirect=True)
def test_every_simulator_page_reads_the_same(simulator_http: httpx.Client) -> None:
    ids = [create(simulator_http, f"m{i}", "spot" if i % 2 else "onDemand") for i in range(25)]
    for novita_id in ids[:3]:
        simulator_http.post("/gpu/instance/stop", json={"instanceId": novita_id})
    seen: set[str] = set()
    for _ in range(6):  # through the statuses on the way up (the simulator's time is scaled)
        for page_num in range(4):
            response = simulator_http.get(
                "/gpu/instances", params={"pageSize": 10, "pageNum": page_num}
            )
            if response.status_code != 200:
                continue  # pageNum 0 refused under base 1
            seen.update(item.id for item in assert_same(response.json()).instances)
        for novita_id in ids[:5]:  # a GET's object (connection details) read as a list item
            item = simulator_http.get("/gpu/instance", params={"instanceId": novita_id}).json()
            assert_same({"instances": [item], "total": 1})
            assert_same_instance(item)
        time.sleep(0.05)
    assert seen == set(ids)


ODD_ITEMS: list[dict[str, Any]] = [
    {"id": 12345, "status": None},
    {"id": "a", "status": 3, "statusError": {"state": "", "message": None}},
    {"id": "b", "status": "running", "statusError": {"state": 5, "message": "pull failed"}},
    {"id": "c", "statusError": "text", "clusterId": 7, "spotStatus": ""},
    {"id": "d", "portMappings": [{"port": "8888", "endpoint": "", "type": 1}, {"port": 0},
                                 {"port": "x"}, "junk", {"port": 22.0, "endpoint": "h:1"}]},
    {"id": "e", "portMappings": {"port": 1}, "connectComponentSSH": {}},
    {"id": "f", "connectComponentSsh": {"sshCommand": 5, "isRunning": True},
     "connectComponentJupyter": {"address": "", "port": "8"}},
    {"id": "g", "connect_component_web_terminal": {"address": "http://t", "isRunning": None}},
    {"id": "h", "spotReclaimTime": "0", "envs": None},
    {"id": "i", "spotReclaimTime": "1700000000", "envs": ""},
    {"id": "j", "spotReclaimTime": 1700000000123, "envs": [{"key": MARKER_ENV, "value": None},
                                                           {"key": MARKER_ENV, "value": 9}]},
    {"id": "k", "spotReclaimTime": "2024-01-02T03:04:05Z", "envs": [{"key": None}]},
    {"id": "l", "spotReclaimTime": "junk", "node": [{"maxRootfsSize": "50"}], "extra": {}},
    {"id": "m", "connectComponentSSH": {"sshCommand": "ssh x", "isRunning": "yes"}},  # model
    {"id": True},  # the model reads True as "True"
]  # fmt: skip


@pytest.mark.parametrize("item", ODD_ITEMS, ids=[str(item["id"]) for item in ODD_ITEMS])
def test_odd_items_read_the_same(item: dict[str, Any]) -> None:
    assert_same({"instances": [item], "total": 1})
    assert_same_instance(item)  # as GET /gpu/instance's body
    assert_same_instance({"instance": item})  # wrapped, as `parse_instance` also accepts it


@pytest.mark.parametrize(
    "data",
    [
        {"instances": [{"id": 1.5}], "total": 1},
        {"instances": [{"id": "a", "envs": [{"value": "no key"}]}]},
        {"instances": [{"id": "a", "envs": {"key": "x"}}]},
        {"instances": [{"id": "a", "connectComponentSSH": {"isRunning": "maybe"}}]},
        {"instances": ["not an object"]},
        {"instances": {"id": "a"}},
    ],
)
def test_what_the_model_refuses_is_refused(data: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        InstancePage.model_validate(data)
    with pytest.raises(ValidationError):
        read_listed_page(data)
    items = data["instances"]
    if isinstance(items, list):  # the same item as GET /gpu/instance's body
        with pytest.raises(ValidationError):
            Instance.model_validate(items[0])
        with pytest.raises(ValidationError):
            read_listed_instance(items[0])


@pytest.mark.parametrize(
    "data",
    [
        {"instances": [], "total": "12"},
        {"instances": [{"id": "a"}]},  # no total: the page is all we know of
        {"instances": None, "total": None},
        {"total": 3},
        {"instances": [{"id": "a"}], "total": "junk", "totalReported": False},
    ],
)
def test_page_totals_read_the_same(data: dict[str, Any]) -> None:
    assert_same(data)


def test_a_body_that_is_not_an_object_is_malformed() -> None:
    with pytest.raises(TypeError):
        read_listed_page([{"id": "a"}])
