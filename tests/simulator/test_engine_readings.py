"""The engine's readings without HTTP: paging windows, switching profiles mid-run, the
catalogue seen through spanning ids, and the JSON cache per view."""

from __future__ import annotations

import pytest

from novita_manager.simulator.config import SimulatorConfig
from novita_manager.simulator.engine import Simulator
from novita_manager.simulator.errors import SimulatorError
from novita_manager.simulator.paging import page_window
from tests.simulator.test_engine import Clock, body


@pytest.mark.parametrize(
    ("profile", "page_num", "page_size", "expected"),
    [
        # (offset, served, requested size, echoed pageNum)
        ("classic", None, None, (0, 10, 10, 1)),
        ("classic", 0, 5, (0, 5, 5, 1)),
        ("classic", 1, 5, (0, 5, 5, 1)),
        ("classic", 3, 5, (10, 5, 5, 3)),
        ("lenient", 2, 100, (100, 100, 100, 2)),
        ("adverse", None, None, (0, 10, 10, 0)),
        ("adverse", 0, 5, (0, 5, 5, 0)),
        ("adverse", 1, 5, (5, 5, 5, 1)),
        ("adverse", 1, 100, (20, 20, 100, 1)),  # capped at 20, pages cut at the cap
        ("classic", 1, 10_000, (0, 500, 500, 1)),
    ],
)
def test_page_window(
    profile: str,
    page_num: int | None,
    page_size: int | None,
    expected: tuple[int, int, int, int],
) -> None:
    config = SimulatorConfig(profile=profile)
    assert page_window(config, page_num, page_size, 10) == expected


def test_page_zero_refused_only_under_base_one() -> None:
    with pytest.raises(SimulatorError) as caught:
        page_window(SimulatorConfig(profile="lenient"), 0, 5, 10)
    assert (caught.value.status, caught.value.metadata) == (400, {"field": "pageNum"})
    assert page_window(SimulatorConfig(profile="adverse"), 0, 5, 10)[0] == 0


def test_switching_profile_changes_answers_for_existing_instances() -> None:
    clock = Clock()
    sim = Simulator(SimulatorConfig(seed=7, profile="classic"), clock)
    iid = sim.create(body(ports="8888/http,22/tcp"))["id"]
    clock.advance(1_000)
    classic = sim.get(iid)
    listed = sim.list_instances()["instances"][0]
    assert listed == classic
    sim.set_profile("adverse")
    adverse = sim.get(iid)
    assert adverse["productId"] == "4090.16c62g"
    assert adverse["node"] == {"maxRootfsSize": 500}
    assert "connectComponentJupyter" not in adverse  # created without tools
    reduced = sim.list_instances(page_num=0)["instances"][0]
    assert "connectComponentSSH" not in reduced
    assert sim.list_instances_bytes(page_num=0).count(b"endpoint") == 0
    assert b"endpoint" in sim.get_bytes(iid)  # cached per view, not mixed up
    sim.set_profile("classic")
    assert sim.get(iid) == classic


def test_a_refused_profile_changes_nothing() -> None:
    sim = Simulator(SimulatorConfig(profile="classic"), Clock())
    with pytest.raises(SimulatorError):
        sim.set_profile("adverse", {"page_size_cap": -1})
    assert sim.config.profile == "classic"
    with pytest.raises(SimulatorError):
        sim.reset(profile="hostile")
    assert sim.config.readings() == SimulatorConfig(profile="classic").readings()


def test_spanning_catalogue_prices_per_cluster() -> None:
    sim = Simulator(SimulatorConfig(profile="adverse"), Clock())
    wide = {p["id"]: p for p in sim.products(billing_method="spot")["data"]}
    assert wide["H100-80GB.16c200g"]["spotPrice"] == "150000"  # only US-CA offers spot
    assert wide["H100-80GB.16c200g"]["billingMethods"] == ["onDemand", "monthly", "spot"]
    hk = {p["id"]: p for p in sim.products(cluster_id="cn-hongkong-1")["data"]}
    assert hk["H100-80GB.16c200g"]["price"] == "259000"
    assert hk["H100-80GB.16c200g"]["spotPrice"] == "0"
    in1 = sim.products(cluster_id="as-in-1", billing_method="spot")["data"]
    assert {p["id"]: p["inventoryState"] for p in in1}["4090.16c62g"] == "none"
    # Capacity named by the entry's own id limits the family in that cluster too.
    sim.set_capacity("4090.16c62g.sgp2", None, 0)
    sgp = sim.products(cluster_id="as-sgp-2", billing_method="spot")["data"]
    assert {p["id"]: p["availableDeploy"] for p in sgp}["4090.16c62g"] is False


def test_create_without_cluster_lands_where_there_is_stock() -> None:
    sim = Simulator(SimulatorConfig(profile="adverse"), Clock())
    clusters = {
        sim.get(sim.create(body(productId="4090.16c62g", billingMode="spot"))["id"])["clusterId"]
        for _ in range(40)
    }
    assert clusters <= {"cn-hongkong-1", "as-sgp-2", "us-ca-6"}  # never IN (none) or AU
    assert len(clusters) > 1
