"""`/_simulator/clock`: moving simulated time forward for every plan, bill and schedule at once."""

from __future__ import annotations

import time

import httpx
import pytest

from novita_manager.simulator.control_client import AsyncSimulatorControl
from novita_manager.simulator.server import SimulatorServer
from tests.simulator.helpers import assert_error, create, get

STARTUP = 2 + 5 + 45  # a create: toCreate, creating, pulling (config.DURATIONS), then running


def test_advance_walks_an_instance_through_its_startup(
    simulator: SimulatorServer, simulator_http: httpx.Client
) -> None:
    simulator.control.reset(time_scale=1)
    before = time.time()
    iid = create(simulator_http)
    after = time.time()
    assert get(simulator_http, iid)["status"] == "toCreate"
    assert simulator.control.advance_clock(10)["offset"] == pytest.approx(10)
    assert get(simulator_http, iid)["status"] == "pulling"
    clock = simulator.control.advance_clock(60)
    assert clock["offset"] == pytest.approx(70)
    assert clock["now"] == pytest.approx(time.time() + 70, abs=1)
    assert get(simulator_http, iid)["status"] == "running"
    listed = simulator_http.get("/gpu/instances").json()["instances"]
    assert [item["status"] for item in listed] == ["running"]
    # Times the simulator reports are simulated: running began STARTUP s after the create.
    (record,) = simulator.control.instances()
    assert before + STARTUP <= record["statusSince"] <= after + STARTUP


def test_billing_grows_by_the_advanced_seconds(
    simulator: SimulatorServer, simulator_http: httpx.Client
) -> None:
    simulator.control.reset(time_scale=1)
    iid = create(simulator_http)
    simulator.control.advance_clock(STARTUP)
    assert get(simulator_http, iid)["status"] == "running"
    began = time.monotonic()
    first = simulator.control.instances()[0]["billedSeconds"]
    simulator.control.advance_clock(3600)
    second = simulator.control.instances()[0]["billedSeconds"]
    elapsed = time.monotonic() - began
    assert 3600 <= second - first <= 3600 + elapsed + 0.01
    # A stopped instance is not billed, however far the clock moves.
    assert simulator_http.post("/gpu/instance/stop", json={"instanceId": iid}).status_code == 200
    simulator.control.advance_clock(60)
    stopped = simulator.control.instances()[0]["billedSeconds"]
    assert get(simulator_http, iid)["status"] == "exited"
    simulator.control.advance_clock(3600)
    assert simulator.control.instances()[0]["billedSeconds"] == stopped


def test_scheduled_reclaim_comes_due_on_an_advance(
    simulator: SimulatorServer, simulator_http: httpx.Client
) -> None:
    simulator.control.reset(time_scale=1)
    iid = create(simulator_http, billingMode="spot")
    simulator.control.advance_clock(STARTUP)
    simulator.control.reclaim(iid, after=3600, lead_time=120)
    assert get(simulator_http, iid)["spotStatus"] == "running"
    simulator.control.advance_clock(3600)
    body = get(simulator_http, iid)
    assert (body["status"], body["spotStatus"]) == ("running", "notified")
    simulator.control.advance_clock(122)  # the 120 s notice, then 5 s of reclaiming
    assert get(simulator_http, iid)["status"] == "stopping"
    simulator.control.advance_clock(5)
    body = get(simulator_http, iid)
    assert (body["status"], body["spotStatus"]) == ("exited", "terminated")


def test_advance_is_in_simulated_seconds(
    simulator: SimulatorServer, simulator_http: httpx.Client
) -> None:
    """At time scale 0.01 a startup of 52 simulated seconds is 0.52 s of the clock, and so is
    an advance of 52."""
    simulator.control.reset(time_scale=1)
    slow = create(simulator_http)
    simulator.control.set_config(time_scale=0.01)
    fast = create(simulator_http)
    assert simulator.control.advance_clock(STARTUP)["offset"] == pytest.approx(0.52)
    assert get(simulator_http, fast)["status"] == "running"
    assert get(simulator_http, slow)["status"] == "toCreate"  # its plan keeps its timing


def test_negative_or_missing_advance_is_refused(
    simulator: SimulatorServer, simulator_http: httpx.Client
) -> None:
    control = f"{simulator.root_url}/_simulator/clock"
    simulator.control.reset(time_scale=1)
    simulator.control.advance_clock(5)
    for body in ({"advance": -1}, {}, {"advance": "10"}, {"advance": True}):
        error = assert_error(httpx.post(control, json=body), 400, "VALIDATOR_PARAM")
        assert error["metadata"] == {"field": "advance"}
    assert_error(httpx.post(control, content=b"Infinity"), 400, "VALIDATOR_PARAM")
    assert_error(httpx.post(control, content=b'{"advance": NaN}'), 400, "VALIDATOR_PARAM")
    assert simulator.control.clock()["offset"] == pytest.approx(5)


def test_reset_sets_the_offset_back(simulator: SimulatorServer) -> None:
    simulator.control.reset(time_scale=1)
    simulator.control.advance_clock(500)
    assert simulator.control.clock()["offset"] == pytest.approx(500)
    simulator.control.reset()
    clock = simulator.control.clock()
    assert clock["offset"] == 0
    assert clock["now"] == pytest.approx(time.time(), abs=1)


async def test_async_client(simulator: SimulatorServer) -> None:
    simulator.control.reset(time_scale=1)
    async with AsyncSimulatorControl(simulator.root_url) as control:
        assert (await control.advance_clock(42))["offset"] == pytest.approx(42)
        assert (await control.clock())["offset"] == pytest.approx(42)
