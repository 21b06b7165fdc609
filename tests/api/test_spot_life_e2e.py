"""Spot life end to end (issue 16): the service and the simulator as real servers on 127.0.0.1,
a real webhook receiver. A reclaim notice then a reclaim give instance.reclaiming then
instance.reclaimed, then per policy the instance runs again; the simulator's live record shows
one live Novita instance per managed instance at every create and delete it saw.

Timings: polls every POLL s; the simulator runs at SCALE so that Novita's own part of a recovery
(migrate, or a create) takes less than a quarter of a poll interval, the early look the service
asks for after an upstream call. Novita's part is then not what the two-interval bound measures.
"""

from __future__ import annotations

import json
import time
from datetime import datetime
from typing import Any

import httpx
import pytest

from novita_manager.simulator.config import DURATIONS, SPOT_RECLAIMING
from tests.api.test_instances_e2e import body, get, wait_status
from tests.fixtures.service import ServiceThread
from tests.fixtures.waiting import wait_for
from tests.fixtures.webhook_receiver import WebhookReceiver

POLL = 2.0
SCALE = 0.003
LEAD = 1000.0  # simulated seconds of notice: 3 s at SCALE, over one poll period
SPOT_EVENTS = ("instance.reclaiming", "instance.reclaimed", "instance.recovered")


def create(service: ServiceThread, **fields: Any) -> dict[str, Any]:
    response = httpx.post(f"{service.base_url}/api/instances", json=body(**fields), timeout=15)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def hooks(receiver: WebhookReceiver, instance_id: str) -> list[dict[str, Any]]:
    bodies = [json.loads(request.body) for request in receiver.requests()]
    return [b for b in bodies if b["data"]["instanceId"] == instance_id]


def hook(receiver: WebhookReceiver, instance_id: str, event: str) -> dict[str, Any] | None:
    return next((b for b in hooks(receiver, instance_id) if b["type"] == event), None)


def epoch(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def start_service(simulator, make_service, webhook_receiver, database_url=None) -> ServiceThread:
    # The two-interval bound needs Novita's part (migrate, or create) under a quarter interval.
    migrate = (DURATIONS["migrating"] + DURATIONS["pulling"]) * SCALE
    create_ = (DURATIONS["toCreate"] + DURATIONS["creating"] + DURATIONS["pulling"]) * SCALE
    assert max(migrate, create_) < POLL / 4
    simulator.control.set_config(time_scale=SCALE)
    return make_service(
        simulator.base_url,
        database_url,
        WEBHOOK_URL=webhook_receiver.url,
        INSTANCE_POLL_INTERVAL=str(POLL),
        RECOVERY_BACKOFF="0",
    )


@pytest.fixture
def spot_service(simulator, make_service, webhook_receiver) -> ServiceThread:
    return start_service(simulator, make_service, webhook_receiver)


def reclaim(simulator, novita_id: str) -> float:
    """Reclaim with notice; returns when the instance will be taken (exited), epoch seconds."""
    before = time.time()
    simulator.control.reclaim(novita_id, lead_time=LEAD)
    return before + (LEAD + SPOT_RECLAIMING) * SCALE


@pytest.mark.parametrize("policy", ["restart", "migrate", "recreate"])
def test_notice_reclaim_and_recovery_within_two_poll_intervals(
    simulator, make_service, webhook_receiver, database_url, policy: str
) -> None:
    spot_service = start_service(simulator, make_service, webhook_receiver, database_url)
    created = create(spot_service, onReclaim=policy, maxRecoveries=2)
    iid = created["instanceId"]
    first = wait_status(spot_service, iid, "running")
    assert (first["spotStatus"], first["recoveries"], first["cluster"]) == (
        "running",
        0,
        "CN-HK-01",
    )
    taken_at = reclaim(simulator, first["novitaInstanceId"])

    noticed = wait_for(lambda: hook(webhook_receiver, iid, "instance.reclaiming"), 10, "notice")
    view = get(spot_service, iid)
    assert view["status"] == "running"
    assert view["spotStatus"] in ("notified", "reclaiming")
    assert noticed["data"]["reclaimAt"] == view["reclaimAt"]
    assert abs(epoch(view["reclaimAt"]) - (taken_at - SPOT_RECLAIMING * SCALE)) < 1.5

    recovered = wait_for(lambda: hook(webhook_receiver, iid, "instance.recovered"), 15, policy)
    assert epoch(recovered["timestamp"]) - taken_at <= 2 * POLL
    types = [b["type"] for b in hooks(webhook_receiver, iid)]
    assert types == ["instance.running", *SPOT_EVENTS]
    view = wait_status(spot_service, iid, "running")
    assert (view["recoveries"], view["spotStatus"], view["reclaimAt"]) == (1, "running", None)
    record = simulator.control.live()
    assert record["maxLive"] == {iid: 1}
    assert record["live"] == {iid: 1}
    upstream = {item["id"]: item for item in simulator.control.instances()}
    if policy == "recreate":
        assert view["novitaInstanceId"] != first["novitaInstanceId"]
        assert upstream[first["novitaInstanceId"]]["status"] in ("toRemove", "removing", "removed")
        assert len(upstream) == 2
    else:
        assert view["novitaInstanceId"] == first["novitaInstanceId"]
        assert len(upstream) == 1


def test_without_a_policy_a_reclaim_stops_the_instance_as_before(
    spot_service, simulator, webhook_receiver
) -> None:
    iid = create(spot_service)["instanceId"]
    view = wait_status(spot_service, iid, "running")
    simulator.control.reclaim(view["novitaInstanceId"], lead_time=0)
    stopped = wait_status(spot_service, iid, "stopped", 10)
    assert (stopped["spotStatus"], stopped["recoveries"]) == ("terminated", 0)
    wait_for(lambda: hook(webhook_receiver, iid, "instance.stopped"), 10, "stopped hook")
    types = [b["type"] for b in hooks(webhook_receiver, iid)]
    # the notice was too short to be seen: instance.reclaiming comes late, still first
    assert types == [
        "instance.running",
        "instance.reclaiming",
        "instance.reclaimed",
        "instance.stopped",
    ]


def test_repeated_reclaims_stop_at_max_recoveries_with_instance_failed(
    spot_service, simulator, webhook_receiver
) -> None:
    iid = create(spot_service, onReclaim="migrate", maxRecoveries=1)["instanceId"]
    view = wait_status(spot_service, iid, "running")
    simulator.control.reclaim(view["novitaInstanceId"], lead_time=0)
    wait_for(lambda: hook(webhook_receiver, iid, "instance.recovered"), 15, "recovered")
    wait_status(spot_service, iid, "running")
    simulator.control.reclaim(view["novitaInstanceId"], lead_time=0)
    failed = wait_for(lambda: hook(webhook_receiver, iid, "instance.failed"), 15, "failed")
    assert "maxRecoveries 1" in failed["data"]["error"]
    final = get(spot_service, iid)
    assert (final["status"], final["recoveries"]) == ("failed", 1)
    types = [b["type"] for b in hooks(webhook_receiver, iid)]
    assert types.count("instance.reclaimed") == 2
    assert types[-1] == "instance.failed"
    assert simulator.control.live()["maxLive"] == {iid: 1}


def test_failover_to_the_second_region_when_the_first_has_no_capacity(
    spot_service, simulator
) -> None:
    regions = ["CN-HK-01", "AS-SGP-02"]
    warm = create(spot_service, name="warm", regions=regions)  # caches HK as deployable
    assert wait_status(spot_service, warm["instanceId"], "running")["cluster"] == "CN-HK-01"
    simulator.control.set_capacity(0, cluster_id="cn-hongkong-1")
    created = create(spot_service, name="failover", regions=regions)
    assert created["pricePerHour"] == pytest.approx(0.175)  # quoted from the cached catalogue
    view = wait_status(spot_service, created["instanceId"], "running")
    assert (view["clusterId"], view["cluster"]) == ("as-sgp-2", "AS-SGP-02")
    assert view["pricePerHour"] == pytest.approx(0.19)
    assert view["region"] == "CN-HK-01"
    single = create(spot_service, name="hk-only")  # no regions: only CN-HK-01
    failed = wait_status(spot_service, single["instanceId"], "failed")
    assert "INSUFFICIENT_RESOURCE" in failed["lastError"]


def test_recreate_fails_over_when_the_cluster_has_no_capacity_left(
    spot_service, simulator, webhook_receiver
) -> None:
    iid = create(spot_service, onReclaim="migrate", regions=["CN-HK-01", "AS-SGP-02"])["instanceId"]
    view = wait_status(spot_service, iid, "running")
    simulator.control.set_capacity(0, cluster_id="cn-hongkong-1")  # migrate refused
    simulator.control.reclaim(view["novitaInstanceId"], lead_time=0)
    wait_for(lambda: hook(webhook_receiver, iid, "instance.recovered"), 15, "recovered")
    moved = wait_status(spot_service, iid, "running")
    assert moved["cluster"] == "AS-SGP-02"
    assert moved["novitaInstanceId"] != view["novitaInstanceId"]
    assert simulator.control.live()["maxLive"] == {iid: 1}


def test_the_price_cap_is_refused_at_create_and_honoured(spot_service, simulator) -> None:
    url = f"{spot_service.base_url}/api/instances"
    refused = httpx.post(url, json=body(maxPricePerHour=0.15), timeout=15)
    assert refused.status_code == 400, refused.text
    error = refused.json()["error"]
    assert error["details"][0]["field"] == "maxPricePerHour"
    assert "maxPricePerHour $0.15/h" in error["message"]
    assert "$0.175/h" in error["message"]
    # two GPUs: HK's cheapest (0.175 x 2 = 0.35) is under 0.38
    capped = create(spot_service, gpuNum=2, maxPricePerHour=0.38, regions="any")
    assert capped["pricePerHour"] == pytest.approx(0.35)
    simulator.control.set_capacity(0, product_id="4090.16c62g.hk1")
    other = create(spot_service, name="capped-2", gpuNum=2, maxPricePerHour=0.39, regions="any")
    view = wait_status(spot_service, other["instanceId"], "running")
    # HK's cheapest has no room: SGP at 0.19 x 2 = 0.38, under the cap (HK's 0.21 x 2 is not)
    assert (view["cluster"], view["pricePerHour"]) == ("AS-SGP-02", pytest.approx(0.38))
    # RTX 3090 in AS-IN-01 has no spot offer: on-demand only with fallbackToOnDemand
    no_spot = httpx.post(url, json=body(productName="RTX 3090 24GB", region="AS-IN-01"), timeout=15)
    assert no_spot.status_code == 400, no_spot.text
    fallback = create(
        spot_service,
        name="fallback",
        productName="RTX 3090 24GB",
        region="AS-IN-01",
        maxPricePerHour=0.2,
        fallbackToOnDemand=True,
    )
    assert fallback["pricePerHour"] == pytest.approx(0.19)
    paid = wait_status(spot_service, fallback["instanceId"], "running")
    assert (paid["billingMode"], paid["spotStatus"]) == ("onDemand", None)


def test_unknown_region_in_regions_is_a_400_naming_it(spot_service) -> None:
    url = f"{spot_service.base_url}/api/instances"
    refused = httpx.post(url, json=body(regions=["CN-HK-01", "XX-NOWHERE-1"]), timeout=15)
    assert refused.status_code == 400, refused.text
    assert refused.json()["error"]["details"][0]["field"] == "regions"
    assert "XX-NOWHERE-1" in refused.json()["error"]["message"]


def test_a_recreate_under_the_cap_waits_for_capacity(spot_service, simulator, webhook_receiver):
    """No offer with room under the cap when it is reclaimed: the recreate waits (retrying)
    until capacity comes back on the simulator's schedule, then runs (not failed)."""
    created = create(
        spot_service, onReclaim="recreate", maxPricePerHour=0.2, regions=["CN-HK-01", "AS-SGP-02"]
    )
    iid = created["instanceId"]
    view = wait_status(spot_service, iid, "running")
    simulator.control.set_capacity(0)  # every product in every cluster
    simulator.control.set_capacity(None, after=4 / SCALE)  # back in 4 s
    simulator.control.reclaim(view["novitaInstanceId"], lead_time=0)
    wait_for(lambda: hook(webhook_receiver, iid, "instance.reclaimed"), 10, "reclaimed")
    waiting = wait_for(
        lambda: (v := get(spot_service, iid))["status"] == "creating" and v.get("lastError") and v,
        10,
        "a recreate waiting for capacity",
    )
    assert "INSUFFICIENT_RESOURCE" in waiting["lastError"] or "offer" in waiting["lastError"]
    wait_for(lambda: hook(webhook_receiver, iid, "instance.recovered"), 20, "recovered")
    final = wait_status(spot_service, iid, "running")
    assert final["pricePerHour"] <= 0.2
    assert hook(webhook_receiver, iid, "instance.failed") is None
    assert simulator.control.live()["maxLive"] == {iid: 1}
