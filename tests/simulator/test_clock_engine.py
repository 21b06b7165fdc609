"""The engine's clock offset, on a fake wall clock: what every part reads moves at once."""

from __future__ import annotations

import math

import pytest

from novita_manager.simulator.config import DURATIONS, SimulatorConfig
from novita_manager.simulator.engine import Simulator
from novita_manager.simulator.errors import SimulatorError

START = 1_800_000_000.0
BODY = {
    "productId": "4090.16c62g.hk1",
    "gpuNum": 1,
    "rootfsSize": 50,
    "imageUrl": "pytorch/pytorch:latest",
    "kind": "gpu",
}


def engine(time_scale: float) -> Simulator:
    return Simulator(
        SimulatorConfig(seed=1, time_scale=time_scale, profile="classic"), lambda: START
    )


@pytest.mark.parametrize("time_scale", [1.0, 0.01])
def test_advance_is_scaled_and_moves_every_instance(time_scale: float) -> None:
    sim = engine(time_scale)
    first, second = sim.create(dict(BODY))["id"], sim.create(dict(BODY))["id"]
    startup = DURATIONS["toCreate"] + DURATIONS["creating"] + DURATIONS["pulling"]
    assert sim.advance_clock(startup - 1) == pytest.approx((startup - 1) * time_scale)
    assert {sim.get(first)["status"], sim.get(second)["status"]} == {"pulling"}
    assert sim.advance_clock(1) == pytest.approx(startup * time_scale)
    assert {sim.get(first)["status"], sim.get(second)["status"]} == {"running"}
    assert sim.clock() == pytest.approx(START + startup * time_scale)


@pytest.mark.parametrize("seconds", [-1.0, -0.001, math.inf, math.nan])
def test_a_step_back_or_without_end_is_refused(seconds: float) -> None:
    sim = engine(1.0)
    sim.advance_clock(10)
    with pytest.raises(SimulatorError) as caught:
        sim.advance_clock(seconds)
    assert (caught.value.status, caught.value.reason) == (400, "VALIDATOR_PARAM")
    assert caught.value.metadata == {"field": "advance"}
    assert sim.clock_offset == 10


def test_reset_goes_back_to_the_wall_clock() -> None:
    sim = engine(1.0)
    sim.advance_clock(3600)
    sim.reset()
    assert (sim.clock_offset, sim.clock()) == (0.0, START)
