"""Readings `page_base`, `page_zero` and `page_size_cap` over HTTP (novita-api.md §12 #1, #7).

Under base 0 an account with fewer instances than a page lists as empty from pageNum=1: the
failure the service must survive, so each base must answer exactly as its reading says.
"""

from __future__ import annotations

import httpx
import pytest

from novita_manager.simulator.server import SimulatorServer
from tests.simulator.helpers import assert_error, create

LIST = "/gpu/instances"


def _ids(client: httpx.Client, **params: int) -> list[str]:
    reply = client.get(LIST, params=params)
    assert reply.status_code == 200, reply.text
    return [item["id"] for item in reply.json()["instances"]]


def _three(client: httpx.Client, product_id: str) -> list[str]:
    """Three instances, newest first (the listing order)."""
    made = [create(client, name=f"p-{i}", productId=product_id) for i in range(3)]
    return made[::-1]


@pytest.mark.parametrize("simulator_profile", ["adverse"], indirect=True)
def test_base_zero_first_page_is_zero(simulator_http: httpx.Client) -> None:
    newest = _three(simulator_http, "4090.16c62g")
    assert _ids(simulator_http, pageNum=0, pageSize=2) == newest[:2]
    assert _ids(simulator_http, pageNum=1, pageSize=2) == newest[2:]
    assert _ids(simulator_http, pageNum=2, pageSize=2) == []
    assert _ids(simulator_http, pageSize=2) == newest[:2]  # no pageNum: the first page
    # The trap: a client starting at 1 with a page larger than the account sees nothing.
    assert _ids(simulator_http, pageNum=1, pageSize=10) == []


@pytest.mark.parametrize("simulator_profile", ["lenient"], indirect=True)
def test_base_one_refuses_page_zero(simulator_http: httpx.Client) -> None:
    newest = _three(simulator_http, "4090.16c62g.hk1")
    assert _ids(simulator_http, pageNum=1, pageSize=2) == newest[:2]
    assert _ids(simulator_http, pageNum=2, pageSize=2) == newest[2:]
    error = assert_error(
        simulator_http.get(LIST, params={"pageNum": 0, "pageSize": 2}), 400, "VALIDATOR_PARAM"
    )
    assert error["metadata"]["field"] == "pageNum"
    assert _ids(simulator_http, pageSize=2) == newest[:2]


@pytest.mark.parametrize("simulator_profile", ["classic"], indirect=True)
def test_classic_page_zero_is_page_one(simulator_http: httpx.Client) -> None:
    newest = _three(simulator_http, "4090.16c62g.hk1")
    assert _ids(simulator_http, pageNum=0, pageSize=2) == newest[:2]
    assert _ids(simulator_http, pageNum=1, pageSize=2) == newest[:2]
    assert _ids(simulator_http, pageNum=2, pageSize=2) == newest[2:]


@pytest.mark.parametrize(
    ("simulator_profile", "first", "echo"),
    [("adverse", 0, 0), ("lenient", 1, 1)],
    indirect=["simulator_profile"],
)
def test_templates_follow_the_base(simulator_http: httpx.Client, first: int, echo: int) -> None:
    everything = simulator_http.get("/templates", params={"pageSize": 100}).json()["template"]
    page = simulator_http.get("/templates", params={"pageNum": first, "pageSize": 2}).json()
    assert [t["Id"] for t in page["template"]] == [t["Id"] for t in everything[:2]]
    assert page["pageNum"] == echo
    second = simulator_http.get("/templates", params={"pageNum": first + 1, "pageSize": 2})
    assert [t["Id"] for t in second.json()["template"]] == [t["Id"] for t in everything[2:4]]
    if first == 1:
        assert_error(simulator_http.get("/templates", params={"pageNum": 0}), 400)


def test_page_size_cap_is_silent(simulator: SimulatorServer, simulator_http: httpx.Client) -> None:
    simulator.control.set_profile("adverse")
    made = [create(simulator_http, name=f"cap-{i}", productId="4090.16c62g") for i in range(25)]
    first = simulator_http.get(LIST, params={"pageNum": 0, "pageSize": 100}).json()
    assert len(first["instances"]) == 20
    assert first["total"] == 25
    second = simulator_http.get(LIST, params={"pageNum": 1, "pageSize": 100}).json()
    assert len(second["instances"]) == 5  # pages are cut at the cap, not at the asked size
    seen = [i["id"] for i in first["instances"] + second["instances"]]
    assert sorted(seen) == sorted(made)
    templates = simulator_http.get("/templates", params={"pageSize": 100}).json()
    assert templates["pageSize"] == 100  # echoed as asked: nothing tells the cap
    simulator.control.set_profile("adverse", {"page_size_cap": 4})
    capped = simulator_http.get("/templates", params={"pageNum": 0, "pageSize": 100}).json()
    assert len(capped["template"]) == 4
    assert capped["total"] > 4


@pytest.mark.parametrize("simulator_profile", ["lenient"], indirect=True)
def test_no_cap_under_lenient(simulator_http: httpx.Client) -> None:
    for i in range(25):
        create(simulator_http, name=f"nocap-{i}")
    body = simulator_http.get(LIST, params={"pageNum": 1, "pageSize": 100}).json()
    assert (len(body["instances"]), body["total"]) == (25, 25)
