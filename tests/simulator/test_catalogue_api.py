"""Catalogue endpoints and auth over HTTP: shapes as novita-api.md §3.1, §3.2, §3.7, §3.8."""

from __future__ import annotations

import httpx
import pytest

from novita_manager.simulator.config import SimulatorConfig
from novita_manager.simulator.server import SimulatorServer
from tests.simulator.helpers import assert_error


def test_clusters_shape(simulator_http: httpx.Client) -> None:
    data = simulator_http.get("/clusters").json()["data"]
    ids = {cluster["id"]: cluster for cluster in data}
    assert {"cn-hongkong-1", "as-sgp-2", "us-ca-6", "as-in-1", "oc-au-1"} <= set(ids)
    hk = ids["cn-hongkong-1"]
    assert hk["name"] == "CN-HK-01"
    assert set(hk) == {
        "id", "name", "availableGpuType", "supportNetworkStorage", "supportInstanceNetwork"
    }  # fmt: skip
    assert "RTX 4090 24GB" in hk["availableGpuType"]
    assert isinstance(hk["supportNetworkStorage"], bool)


def test_products_shape_and_quirks(simulator_http: httpx.Client) -> None:
    data = simulator_http.get("/products").json()["data"]
    by_id = {p["id"]: p for p in data}
    hk = by_id["4090.16c62g.hk1"]
    for key in (
        "id", "name", "cpuPerGpu", "memoryPerGpu", "diskPerGpu", "availableDeploy", "minRootFS",
        "maxRootFS", "regions", "price", "monthlyPrice", "billingMethods", "spotPrice",
        "inventoryState",
    ):  # fmt: skip
        assert key in hk, key
    assert hk["name"] == "RTX 4090 24GB"
    assert (hk["price"], hk["spotPrice"]) == ("35000", "17500")
    assert isinstance(hk["cpuPerGpu"], int)
    assert hk["regions"] == ["CN-HK-01 (Hong Kong)"]
    assert by_id["4090.16c62g.usca6"]["regions"] == ["US-CA-06"]  # older bare form
    assert by_id["A100-80GB.14c240g"]["regions"] == []  # everywhere
    assert by_id["A100-80GB.14c240g"]["price"] == "160000"
    assert by_id["4090.16c62g.au1"]["availableDeploy"] is False
    assert by_id["4090.16c62g.in1"]["inventoryState"] == "none"
    assert "spotPrice" not in by_id["3090.12c46g.in1"]
    assert by_id["H100-80GB.16c200g.hk1"]["spotPrice"] == "0"
    fours = [p for p in data if p["name"] == "RTX 4090 24GB"]
    assert len({p["price"] for p in fours}) > 1
    assert len(fours) >= 5
    deployable_spot = [p for p in fours if p["availableDeploy"] and p["inventoryState"] != "none"]
    assert min(deployable_spot, key=lambda p: int(p["spotPrice"]))["id"] == "4090.16c62g.hk1"


def test_products_filters(simulator_http: httpx.Client) -> None:
    def ids(**params: str | int) -> set[str]:
        return {p["id"] for p in simulator_http.get("/products", params=params).json()["data"]}

    hk = ids(clusterId="cn-hongkong-1")
    assert "4090.16c62g.hk1" in hk
    assert "A100-80GB.14c240g" in hk
    assert "4090.16c62g.sgp2" not in hk
    assert "4090.16c62g.usca6" in ids(clusterId="us-ca-6")  # bare region still matches
    assert ids(productName="4090") == ids(productName="rtx 4090")
    assert all("4090" in i for i in ids(productName="4090"))
    spot = ids(billingMethod="spot")
    assert "3090.12c46g.in1" not in spot
    assert "H100-80GB.16c200g.hk1" not in spot
    assert "4090.16c62g.in1" not in ids(gpuNum=8)
    assert ids(clusterId="nowhere-1") == set()


def test_templates_list_and_get(simulator_http: httpx.Client) -> None:
    reply = simulator_http.get("/templates").json()
    assert set(reply) == {"template", "total", "pageSize", "pageNum"}
    assert reply["total"] == len(reply["template"]) >= 4
    pytorch = next(t for t in reply["template"] if t["Id"] == "1")
    assert pytorch["ports"] == [{"type": "http", "ports": [8888]}, {"type": "tcp", "ports": [22]}]
    assert pytorch["channel"] == "official"
    assert pytorch["createdAt"].isdigit()
    assert pytorch["recommendCards"][0].keys() == {"gpuSpecId", "cardNum"}
    assert pytorch["tools"][0]["name"] == "Jupyter"
    assert isinstance(pytorch["rootfsSize"], int)
    private = simulator_http.get("/templates", params={"channel": "private"}).json()["template"]
    assert len(private) == 1
    auths = simulator_http.get("/repository/auths").json()["data"]
    assert private[0]["imageAuth"] in {a["id"] for a in auths}
    assert set(auths[0]) == {"id", "name", "username", "password"}
    paged = simulator_http.get("/templates", params={"pageSize": 2, "pageNum": 2}).json()
    assert len(paged["template"]) == 2
    assert paged["pageNum"] == 2
    named = simulator_http.get("/templates", params={"name": "pytorch"}).json()
    assert [t["Id"] for t in named["template"]] == ["1"]
    one = simulator_http.get("/template", params={"templateId": "1"}).json()
    assert one == {"template": pytorch}


def test_unknown_template(simulator_http: httpx.Client) -> None:
    reply = simulator_http.get("/template", params={"templateId": "999"})
    assert_error(reply, 400, "TEMPLATE_NOT_FOUND")


def test_get_without_content_type(simulator: SimulatorServer) -> None:
    reply = httpx.get(f"{simulator.v1_url}/clusters", headers=simulator.auth_headers)
    assert reply.status_code == 200


@pytest.mark.parametrize("header", [None, "Bearer", "Basic abc", "sk_only"])
def test_missing_or_malformed_key_is_401(simulator: SimulatorServer, header: str | None) -> None:
    headers = {"Authorization": header} if header is not None else {}
    reply = httpx.get(f"{simulator.v1_url}/clusters", headers=headers)
    assert_error(reply, 401, "UNAUTHORIZED")


def test_any_key_accepted_without_configured_key(simulator: SimulatorServer) -> None:
    reply = httpx.get(
        f"{simulator.v1_url}/clusters", headers={"Authorization": "Bearer sk_whatever"}
    )
    assert reply.status_code == 200


def test_configured_key_is_enforced() -> None:
    with SimulatorServer(SimulatorConfig(api_key="sk_right")) as server:
        url = f"{server.v1_url}/gpu/instances"
        wrong = httpx.get(url, headers={"Authorization": "Bearer sk_wrong"})
        assert_error(wrong, 401, "UNAUTHORIZED")
        right = httpx.get(url, headers={"Authorization": "Bearer sk_right"})
        assert right.json() == {"instances": [], "total": 0}
        assert server.control.stats()["calls"]["GET /gpu/instances"] == {"401": 1, "200": 1}
