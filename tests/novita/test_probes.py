"""The doctor's probes: the pure decisions on hand-made answers (every reading and the odd
ones nobody planned for), then `run_probes` against the real simulator under each profile, with
the simulator's call counts proving that only GETs were sent."""

from __future__ import annotations

from typing import Any

import pytest
from multidict import CIMultiDict

from novita_manager.novita.client import NovitaClient
from novita_manager.novita.models import Product
from novita_manager.novita.probe_decisions import (
    decide_default_billing,
    decide_list_shape,
    decide_node_shape,
    decide_page_base,
    decide_page_cap,
    decide_product_ids,
    missing_connection_fields,
)
from novita_manager.novita.prober import rate_limit_headers
from novita_manager.novita.probes import run_probes
from novita_manager.novita.readings import READINGS
from tests.simulator.helpers import create

# ----- page base -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("zero", "one", "total", "readings"),
    [
        (["a"], ["b"], 2, {"page_base": 0}),  # two different pages
        (["a"], [], 1, {"page_base": 0}),  # all on page 0, page 1 past the end
        (["a"], ["a"], 2, {"page_base": 1, "page_zero": "same"}),
        (None, ["a"], 1, {"page_base": 1, "page_zero": "refused"}),
        (None, [], 0, {"page_base": 1, "page_zero": "refused"}),  # a refusal decides alone
        ([], ["a"], 1, {"page_base": 1, "page_zero": "empty"}),
    ],
)
def test_page_base_decided(zero, one, total, readings) -> None:
    verdict = decide_page_base(zero, one, total, 1, "instances")
    assert verdict.status == "ok"
    assert verdict.readings == readings


@pytest.mark.parametrize(
    ("zero", "one", "total", "text"),
    [
        ([], [], 0, "undecidable: no items"),
        ([], [], 5, "both pages empty"),
        (["a", "b"], ["b", "c"], 4, "overlap"),
        (["a"], [], 3, "pageNum=1 empty although total is 3"),
    ],
)
def test_page_base_undecided_is_a_warning(zero, one, total, text) -> None:
    verdict = decide_page_base(zero, one, total, 2 if len(zero) > 1 else 1, "instances")
    assert verdict.status == "warn"
    assert verdict.readings == {}
    assert text in verdict.observed


def test_page_cap() -> None:
    assert decide_page_cap(20, 25, 100, "i").readings == {"page_size_cap": 20}
    assert decide_page_cap(100, 250, 100, "i").readings == {"page_size_cap": None}
    assert decide_page_cap(25, 25, 100, "i").readings == {"page_size_cap": None}
    assert decide_page_cap(0, 0, 100, "i").status == "warn"
    empty = decide_page_cap(0, 7, 100, "i")  # an empty first page while items exist
    assert (empty.status, empty.readings) == ("warn", {})


# ----- shapes ----------------------------------------------------------------------------------

FULL: dict[str, Any] = {
    "id": "x",
    "status": "running",
    "portMappings": [{"port": 22, "endpoint": "1.2.3.4:30022", "type": "tcp"}],
    "connectComponentSSH": {"sshCommand": "ssh root@1.2.3.4 -p 30022"},
    "connectComponentJupyter": {"address": "https://x"},
    "network": {"id": "", "ip": ""},
    "node": [{"maxRootfsSize": 500}],
}


def test_list_shape_full_and_reduced() -> None:
    assert decide_list_shape(dict(FULL), FULL).readings == {"list_shape": "full"}
    reduced = {"id": "x", "status": "running", "portMappings": [{"port": 22, "type": "tcp"}]}
    verdict = decide_list_shape(reduced, FULL)
    assert verdict.readings == {"list_shape": "reduced"}
    assert missing_connection_fields(reduced, FULL) == [
        "connectComponentSSH",
        "connectComponentJupyter",
        "network",
        "portMappings[].endpoint",
    ]
    assert "other fields only on GET: node" in verdict.observed


def test_node_shapes() -> None:
    assert decide_node_shape(FULL).readings == {"node_shape": "array"}
    assert decide_node_shape({"node": {"maxRootfsSize": 1}}).readings == {"node_shape": "object"}
    assert decide_node_shape({}).status == "warn"
    assert decide_node_shape({"node": "big"}).status == "warn"


# ----- products --------------------------------------------------------------------------------


def product(pid: str, regions: list[str], spot: str | None = "100", **extra: Any) -> Product:
    body = {"id": pid, "name": "RTX 4090 24GB", "regions": regions, "availableDeploy": True}
    if spot is not None:
        body["spotPrice"] = spot
    return Product.model_validate(body | extra)


def test_default_billing() -> None:
    spot = [product("a", ["CN-HK-01"]), product("spot-only", ["CN-HK-01"])]
    same = decide_default_billing(spot, spot)
    assert same.readings == {"products_default_billing": "all"}
    missing = decide_default_billing([product("a", ["CN-HK-01"])], spot)
    assert missing.readings == {"products_default_billing": "onDemand"}
    assert "spot-only" in missing.observed
    zeroed = decide_default_billing([product("a", [], spot="0"), product("spot-only", [])], spot)
    assert zeroed.readings == {"products_default_billing": "onDemand"}
    assert decide_default_billing(spot, []).status == "warn"


def test_product_ids() -> None:
    per_cluster = [product("a.hk1", ["CN-HK-01 (Hong Kong)"]), product("a100", [])]
    assert decide_product_ids(per_cluster).readings == {"product_ids": "per_cluster"}
    spanning = [product("a", ["CN-HK-01 (Hong Kong)", "US-CA-06"])]
    assert decide_product_ids(spanning).readings == {"product_ids": "spanning"}
    # One cluster written two ways is still one cluster.
    same = [product("a", ["CN-HK-01 (Hong Kong)", "cn-hk-01"])]
    assert decide_product_ids(same).readings == {"product_ids": "per_cluster"}


def test_rate_limit_headers_are_picked_out() -> None:
    headers = CIMultiDict({"X-RateLimit-Remaining": "9", "Retry-After": "1", "Content-Type": "a/b"})
    assert rate_limit_headers(headers) == {"x-ratelimit-remaining": "9", "retry-after": "1"}


# ----- against the simulator -------------------------------------------------------------------


def writes(stats: dict[str, Any]) -> list[str]:
    return [endpoint for endpoint in stats["calls"] if not endpoint.startswith("GET ")]


async def probe(simulator) -> Any:
    async with NovitaClient(base_url=simulator.base_url, api_key=simulator.api_key) as client:
        return await run_probes(client, base_url=simulator.base_url, region="CN-HK-01")


@pytest.mark.parametrize("simulator_profile", ["adverse"], indirect=True)  # 0 not refused
async def test_fresh_account_decides_paging_from_templates(simulator) -> None:
    report = await probe(simulator)
    assert report.outcome == "ok"
    assert report.check("page_base").status == "ok"  # no instances: the templates decide
    assert "instances: undecidable: no items" in report.check("page_base").observed
    assert report.check("list_shape").status == "warn"
    assert writes(simulator.control.stats()) == []
    ids = [check.id for check in report.checks]
    assert set(ids) >= {item.id for item in READINGS}  # every reading has a line
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("simulator_profile", ["classic"], indirect=True)
async def test_instances_decide_shapes_and_nothing_is_written(simulator, simulator_http) -> None:
    create(simulator_http)
    create(simulator_http, name="second")
    before = simulator.control.stats()
    report = await probe(simulator)
    assert report.readings["list_shape"] == "full"
    assert report.readings["node_shape"] == "array"
    assert report.readings["page_base"] == 1
    after = simulator.control.stats()
    assert writes(after) == writes(before) == ["POST /gpu/instance/create"]
    assert after["instancesCreated"] == 2
