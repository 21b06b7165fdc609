"""The pure engine, driven by a fake clock: state machine, billing, capacity, validation."""

from __future__ import annotations

from typing import Any

import pytest

from novita_manager.simulator.config import DURATIONS, SimulatorConfig
from novita_manager.simulator.engine import Simulator
from novita_manager.simulator.errors import SimulatorError


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def body(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "productId": "4090.16c62g.hk1",
        "gpuNum": 1,
        "rootfsSize": 50,
        "imageUrl": "pytorch/pytorch:latest",
        "kind": "gpu",
    }
    base.update(overrides)
    return base


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def sim(clock: Clock) -> Simulator:
    return Simulator(SimulatorConfig(seed=7, profile="classic"), clock)


def walk(sim: Simulator, clock: Clock, instance_id: str, statuses: list[str]) -> None:
    """Assert the status now and after each state's base duration (time_scale 1)."""
    for status in statuses:
        assert sim.get(instance_id)["status"] == status
        clock.advance(DURATIONS.get(status, 0.0))


def test_autostart_goes_to_running(sim: Simulator, clock: Clock) -> None:
    iid = sim.create(body())["id"]
    walk(sim, clock, iid, ["toCreate", "creating", "pulling", "running"])
    clock.advance(10_000)
    assert sim.get(iid)["status"] == "running"


def test_without_autostart_waits_in_exited_then_starts(clock: Clock) -> None:
    sim = Simulator(SimulatorConfig(autostart=False, profile="classic"), clock)
    iid = sim.create(body())["id"]
    walk(sim, clock, iid, ["toCreate", "creating", "exited"])
    clock.advance(1000)
    assert sim.get(iid)["status"] == "exited"
    assert sim.start(iid) == {"instanceId": iid, "state": "toStart"}
    walk(sim, clock, iid, ["toStart", "starting", "pulling", "running"])


def test_stop_restart_delete_and_404(sim: Simulator, clock: Clock) -> None:
    iid = sim.create(body())["id"]
    clock.advance(60)
    assert sim.restart(iid)["state"] == "toRestart"
    walk(sim, clock, iid, ["toRestart", "restarting", "running"])
    assert sim.stop(iid)["state"] == "toStop"
    walk(sim, clock, iid, ["toStop", "stopping", "exited"])
    assert sim.delete(iid)["state"] == "toRemove"
    assert sim.delete(iid)["state"] == "toRemove"  # repeated delete is accepted
    walk(sim, clock, iid, ["toRemove", "removing"])
    with pytest.raises(SimulatorError) as caught:
        sim.get(iid)
    assert caught.value.status == 404
    assert caught.value.message == "instance not found"
    assert sim.list_instances()["total"] == 0
    assert sim.all_instances()[0]["removed"] is True


@pytest.mark.parametrize(
    ("action", "status_after"),
    [("start", "running"), ("restart", "exited"), ("stop", "exited"), ("migrate", "creating")],
)
def test_invalid_state_change(sim: Simulator, clock: Clock, action: str, status_after: str) -> None:
    iid = sim.create(body())["id"]
    clock.advance(60)
    if status_after == "exited":
        sim.stop(iid)
        clock.advance(60)
    elif status_after == "creating":
        sim.delete(iid)  # toRemove: migrate is not allowed
    with pytest.raises(SimulatorError) as caught:
        getattr(sim, action)(iid)
    assert (caught.value.status, caught.value.reason) == (400, "INVALID_STATE_CHANGE")
    assert caught.value.message == "invalid state change"


def test_delete_works_from_any_state(sim: Simulator, clock: Clock) -> None:
    iid = sim.create(body())["id"]
    clock.advance(3)  # creating
    assert sim.delete(iid)["state"] == "toRemove"


def test_migrate_goes_through_migrating_and_pulling(sim: Simulator, clock: Clock) -> None:
    iid = sim.create(body())["id"]
    clock.advance(60)
    assert sim.migrate(iid)["state"] == "migrating"
    walk(sim, clock, iid, ["migrating", "pulling", "running"])


def test_billing_from_pulling_until_stopped(sim: Simulator, clock: Clock) -> None:
    iid = sim.create(body(gpuNum=2))["id"]
    clock.advance(7)  # toCreate + creating: not billed
    assert sim.all_instances()[0]["billedSeconds"] == 0
    clock.advance(45 + 3600 - 45)  # pulling and running: an hour in total
    sim.stop(iid)
    clock.advance(6)  # toStop + stopping: billed; exited: not
    clock.advance(5000)
    record = sim.all_instances()[0]
    assert record["billedSeconds"] == pytest.approx(3606)
    # 35000 / 100000 USD per GPU-hour, 2 GPUs
    assert record["accruedCostUsd"] == pytest.approx(3606 / 3600 * 0.35 * 2, rel=1e-6)


def test_spot_billing_uses_spot_price(sim: Simulator, clock: Clock) -> None:
    sim.create(body(billingMode="spot"))
    clock.advance(7 + 3600)
    record = sim.all_instances()[0]
    assert record["spotStatus"] == "running"
    assert record["accruedCostUsd"] == pytest.approx(0.175)


def test_reclaim_then_migrate(sim: Simulator, clock: Clock) -> None:
    iid = sim.create(body(billingMode="spot"))["id"]
    clock.advance(60)
    sim.reclaim(iid)
    got = sim.get(iid)
    assert (got["status"], got["spotStatus"]) == ("running", "notified")
    assert int(got["spotReclaimTime"]) == int(clock.now + 30)
    clock.advance(30)
    assert sim.get(iid)["spotStatus"] == "reclaiming"
    clock.advance(5)
    got = sim.get(iid)
    assert (got["status"], got["spotStatus"]) == ("exited", "terminated")
    assert got["spotReclaimTime"] != "0"
    with pytest.raises(SimulatorError) as caught:
        sim.start(iid)
    assert caught.value.reason == "INSUFFICIENT_RESOURCE"
    sim.migrate(iid)
    clock.advance(20 + 45)
    got = sim.get(iid)
    assert (got["status"], got["spotStatus"], got["spotReclaimTime"]) == ("running", "running", "0")


def test_reclaim_refuses_on_demand(sim: Simulator, clock: Clock) -> None:
    iid = sim.create(body())["id"]
    clock.advance(60)
    with pytest.raises(SimulatorError):
        sim.reclaim(iid)


def test_fail_sets_status_error_and_start_clears_it(sim: Simulator, clock: Clock) -> None:
    iid = sim.create(body())["id"]
    clock.advance(10)  # pulling
    sim.fail(iid)
    got = sim.get(iid)
    assert got["status"] == "exited"
    assert got["statusError"]["state"] == "pulling"
    assert "failed to pull image" in got["statusError"]["message"]
    assert sim.list_instances()["instances"][0]["statusError"] == got["statusError"]
    sim.start(iid)
    assert "statusError" not in sim.get(iid)


def test_capacity_limits_and_unlimit(sim: Simulator) -> None:
    sim.set_capacity("4090.16c62g.hk1", "cn-hongkong-1", 1)
    sim.create(body())
    with pytest.raises(SimulatorError) as caught:
        sim.create(body())
    assert (caught.value.status, caught.value.reason) == (400, "INSUFFICIENT_RESOURCE")
    listed = {p["id"]: p for p in sim.products()["data"]}
    assert listed["4090.16c62g.hk1"]["availableDeploy"] is False
    sim.set_capacity("4090.16c62g.hk1", "cn-hongkong-1", None)
    sim.create(body())


def test_cluster_wide_capacity(sim: Simulator) -> None:
    sim.set_capacity(None, "CN-HK-01", 0)
    with pytest.raises(SimulatorError):
        sim.create(body(productId="3090.16c62g.hk1"))
    sim.create(body(productId="4090.16c62g.sgp2"))


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"productId": None}, "productId"),
        ({"gpuNum": 0}, "gpuNum"),
        ({"gpuNum": 9}, "gpuNum"),
        ({"gpuNum": "1"}, "gpuNum"),
        ({"rootfsSize": None}, "rootfsSize"),
        ({"rootfsSize": 501}, "rootfsSize"),
        ({"imageUrl": ""}, "imageUrl"),
        ({"kind": None}, "kind"),
        ({"kind": "tpu"}, "kind"),
        ({"ports": "2222/tcp"}, "ports"),
        ({"ports": "8888/udp"}, "ports"),
        ({"ports": "70000/tcp"}, "ports"),
        ({"ports": ",".join(f"{p}/tcp" for p in range(8000, 8016))}, "ports"),
        ({"envs": [{"key": f"K{i}", "value": ""} for i in range(101)]}, "envs"),
        ({"billingMode": "weekly"}, "billingMode"),
        ({"imageAuthId": "nope"}, "imageAuthId"),
    ],
)
def test_create_validation(sim: Simulator, overrides: dict[str, Any], field: str) -> None:
    request = {k: v for k, v in body(**overrides).items() if v is not None}
    with pytest.raises(SimulatorError) as caught:
        sim.create(request)
    assert (caught.value.status, caught.value.reason) == (400, "VALIDATOR_PARAM")
    assert caught.value.metadata["field"] == field
    assert field in caught.value.message


def test_create_normalises_small_rootfs_and_keeps_envs(sim: Simulator) -> None:
    envs = [{"key": "NM_MARKER", "value": "req-123"}]
    iid = sim.create(body(rootfsSize=3, envs=envs, name="marker"))["id"]
    got = sim.get(iid)
    assert got["rootfsSize"] == 10
    assert got["envs"] == envs


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"productId": "no-such"}, "RESOURCE_NOT_FOUND"),
        ({"clusterId": "mars-1"}, "RESOURCE_NOT_FOUND"),
        ({"clusterId": "as-sgp-2"}, "INSUFFICIENT_RESOURCE"),
        ({"productId": "4090.16c62g.au1"}, "INSUFFICIENT_RESOURCE"),
        ({"productId": "4090.16c62g.in1"}, "INSUFFICIENT_RESOURCE"),
        ({"productId": "3090.12c46g.in1", "billingMode": "spot"}, "UNSUPPORTED_BILLING_MODE"),
    ],
)
def test_create_business_errors(sim: Simulator, overrides: dict[str, Any], reason: str) -> None:
    with pytest.raises(SimulatorError) as caught:
        sim.create(body(**overrides))
    assert (caught.value.status, caught.value.reason) == (400, reason)


def test_cluster_chosen_for_everywhere_product(sim: Simulator) -> None:
    iid = sim.create(body(productId="A100-80GB.14c240g", clusterId="OC-AU-01"))["id"]
    assert sim.get(iid)["clusterId"] == "oc-au-1"
    other = sim.create(body(productId="A100-80GB.14c240g"))["id"]
    assert sim.get(other)["clusterId"] in {c.id for c in sim.catalogue.clusters}


def test_deterministic_for_a_seed(clock: Clock) -> None:
    def run(seed: int) -> list[dict[str, Any]]:
        sim = Simulator(SimulatorConfig(seed=seed, profile="classic"), clock)
        for _ in range(5):
            sim.create(body(productId="A100-80GB.14c240g", ports="22/tcp"))
        return sim.all_instances()

    first, again, other = run(1), run(1), run(2)
    assert first == again
    assert [i["id"] for i in first] != [i["id"] for i in other]
    assert all(len(i["id"]) == 16 and int(i["id"], 16) >= 0 for i in first)


def test_list_filters_and_paging(sim: Simulator, clock: Clock) -> None:
    for index in range(25):
        sim.create(body(name=f"Job-{index:02d}"))
    sim.create(body(productId="3090.16c62g.hk1", name="other"))
    assert sim.list_instances()["total"] == 26
    assert len(sim.list_instances()["instances"]) == 10  # default page size
    assert (
        sim.list_instances(page_num=0)["instances"] == sim.list_instances(page_num=1)["instances"]
    )
    assert sim.list_instances(name="job-1")["total"] == 10
    assert sim.list_instances(product_name="3090")["total"] == 1
    assert sim.list_instances(status="toCreate", page_size=100)["total"] == 26
    assert sim.list_instances(status="running")["total"] == 0
    assert sim.list_instances(page_size=10_000)["instances"].__len__() == 26
    assert sim.list_instances()["instances"][0]["name"] == "other"  # newest first


def test_time_scale_shortens_durations(clock: Clock) -> None:
    sim = Simulator(SimulatorConfig(time_scale=0.1, profile="classic"), clock)
    iid = sim.create(body())["id"]
    clock.advance((2 + 5 + 45) * 0.1 + 0.001)
    assert sim.get(iid)["status"] == "running"


def test_ten_thousand_instances_list_fast(sim: Simulator) -> None:
    import time

    for _ in range(10_000):
        sim.create(body(productId="A100-80GB.14c240g"))
    started = time.perf_counter()
    for page in range(1, 21):
        assert len(sim.list_instances(page_num=page, page_size=100)["instances"]) == 100
    assert time.perf_counter() - started < 2.0
    assert sim.list_instances()["total"] == 10_000
