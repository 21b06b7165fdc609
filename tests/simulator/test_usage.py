"""Prices, container disk and GPU utilisation in the simulator's engine, on a fake clock."""

from __future__ import annotations

import pytest

from novita_manager.simulator.config import SimulatorConfig
from novita_manager.simulator.engine import Simulator
from novita_manager.simulator.errors import SimulatorError
from tests.simulator.test_engine import Clock, body


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def sim(clock: Clock) -> Simulator:
    return Simulator(SimulatorConfig(seed=7, profile="classic"), clock)


def record(sim: Simulator) -> dict:
    return sim.all_instances()[0]


def test_a_price_change_applies_from_the_next_start(sim: Simulator, clock: Clock) -> None:
    iid = sim.create(body())["id"]
    clock.advance(7 + 3600)  # an hour billed at $0.35
    sim.set_price("4090.16c62g", price=70_000, spot_price=None)
    clock.advance(3600)  # still the rate locked at create
    assert record(sim)["accruedCostUsd"] == pytest.approx(0.70)
    sim.stop(iid)
    clock.advance(6)  # toStop + stopping, billed at the old rate
    clock.advance(1000)
    sim.start(iid)
    clock.advance(9 + 3600)  # toStart + starting (not billed), then an hour at $0.70
    assert record(sim)["billingRateUsd"] == pytest.approx(0.70)
    assert record(sim)["accruedCostUsd"] == pytest.approx(0.70 + 6 / 3600 * 0.35 + 0.70)
    listed = sim.products(cluster_id="cn-hongkong-1", billing_method="onDemand")
    assert any(p["id"] == "4090.16c62g.hk1" and p["price"] == "70000" for p in listed["data"])


def test_container_disk_beyond_60_gb_is_billed_while_billed(sim: Simulator, clock: Clock) -> None:
    iid = sim.create(body(rootfsSize=300))["id"]
    clock.advance(7 + 24 * 3600)
    assert record(sim)["accruedCostUsd"] == pytest.approx(24 * 0.35 + 240 * 0.005)
    sim.stop(iid)
    clock.advance(6)
    before = record(sim)["accruedCostUsd"]
    clock.advance(86_400)  # stopped: the disk is not kept, nothing billed
    assert record(sim)["accruedCostUsd"] == before


def test_gpu_utilisation_is_reported_and_can_be_set(sim: Simulator, clock: Clock) -> None:
    iid = sim.create(body(gpuNum=2))["id"]
    clock.advance(60)
    sim.set_utilization(iid, 3.0)
    changed = clock.now
    clock.advance(30)
    metrics = sim.gpu_metrics(iid, clock.now - 60, clock.now, 2)
    points = [(float(p["timestamp"]), p["value"]) for p in metrics["gpuUtilization"]["avg"]]
    assert (changed, 3.0) in points
    assert points[-1] == (clock.now, 3.0)
    running_since = changed - 60 + 2 + 5 + 45  # toCreate, creating, pulling
    busy = [value for t, value in points if running_since <= t < changed]
    assert busy
    assert set(busy) == {85.0}  # the default while running
    assert {value for t, value in points if t < running_since} == {0.0}  # not running yet
    assert len(metrics["gpuUtilization"]["gpuIds"]) == 2
    sim.stop(iid)
    clock.advance(10)
    latest = sim.gpu_metrics(iid, None, None, None)["gpuUtilization"]["avg"][-1]
    assert latest["value"] == 0.0  # stopped
    with pytest.raises(SimulatorError):
        sim.set_utilization(iid, 101)
    with pytest.raises(SimulatorError):
        sim.set_price("no-such-product", 1, None)
