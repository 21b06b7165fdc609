"""The service against the simulator playing the readings of Novita's API (issue 14): one test per
point, under the profile whose reading broke the old code (named in each docstring) and, where
cheap, under the opposite one as well.

Real servers on 127.0.0.1 throughout (service, simulator, webhook receiver); the history is read
from the service's SQLite file.
"""

from __future__ import annotations

import sqlite3
import time
from typing import Any

import httpx
import pytest

from tests.api.test_instances_e2e import create, events, get, wait_status
from tests.fixtures.service import ServiceThread
from tests.fixtures.waiting import wait_for

BOTH = pytest.mark.parametrize("simulator_profile", ["adverse", "lenient"], indirect=True)
ADVERSE = pytest.mark.parametrize("simulator_profile", ["adverse"], indirect=True)


@pytest.fixture
def service(simulator, make_service, webhook_receiver) -> ServiceThread:
    return make_service(simulator.base_url, WEBHOOK_URL=webhook_receiver.url)


def history(service: ServiceThread, instance_id: str) -> list[str]:
    path = service.settings.database_url.split("///", 1)[1]
    with sqlite3.connect(path) as db:
        rows = db.execute(
            "SELECT reason FROM instance_events WHERE instance_id = ? ORDER BY id", (instance_id,)
        ).fetchall()
    return [reason or "" for (reason,) in rows]


def calls(simulator: Any, endpoint: str) -> int:
    return sum(simulator.control.stats()["calls"].get(endpoint, {}).values())


@BOTH
def test_an_unknown_create_and_a_refused_first_page_never_pay_twice(service, simulator) -> None:
    """page_base=0: the old search after an unknown create listed from pageNum=1, saw an empty
    account and created a second paid instance. Here the first listing call is also refused
    once, so the walk restarts at 1, proves nothing (incomplete) and must look again."""
    simulator.control.set_faults(
        [
            {
                "endpoint": "POST /gpu/instance/create",
                "kind": "commit_then_fail",
                "then": "error",
                "status": 502,
                "times": 1,
            },
            {"endpoint": "GET /gpu/instances", "kind": "error", "status": 400, "times": 1},
        ]
    )
    created = create(service).json()
    view = wait_status(service, created["instanceId"], "running")
    upstream = [item for item in simulator.control.instances() if not item["removed"]]
    assert [item["id"] for item in upstream] == [view["novitaInstanceId"]]
    assert calls(simulator, "POST /gpu/instance/create") == 1


@BOTH
def test_the_sync_lists_without_one_get_per_instance(service, simulator) -> None:
    """page_base=0: the old sync listed from pageNum=1, found none of its instances and fell
    back to one GET per instance every interval."""
    ids = [create(service, name=f"sync-{n}").json()["instanceId"] for n in range(3)]
    for instance_id in ids:
        wait_status(service, instance_id, "running")
    before = calls(simulator, "GET /gpu/instance")
    lists = calls(simulator, "GET /gpu/instances")
    time.sleep(1.5)  # several sync intervals (0.2 s)
    assert calls(simulator, "GET /gpu/instances") > lists
    assert calls(simulator, "GET /gpu/instance") - before == 0


@BOTH
def test_running_webhook_and_view_carry_connection_details(
    service, simulator, webhook_receiver
) -> None:
    """list_shape=reduced: list items have no endpoints or connectComponent*; the old service
    took both from the listing, so the running webhook and the view had none. tools_required:
    Jupyter exists only when the create sent the template's tools."""
    created = create(service, templateId="1").json()
    view = wait_status(service, created["instanceId"], "running")
    assert view["portMappings"]
    assert all(mapping["endpoint"] for mapping in view["portMappings"])
    assert view["connectionDetails"].get("ssh")
    assert view["connectionDetails"].get("webTerminal")
    webhook_receiver.wait_for(1)
    [event] = events(webhook_receiver)
    assert event["type"] == "instance.running"
    assert event["data"]["instance"]["connectionDetails"] == view["connectionDetails"]
    assert event["data"]["instance"]["portMappings"] == view["portMappings"]
    time.sleep(0.6)  # later syncs of reduced list items keep the details
    assert get(service, created["instanceId"])["connectionDetails"] == view["connectionDetails"]


@BOTH
def test_jupyter_is_enabled_by_sending_the_templates_tools(service, simulator) -> None:
    """tools_required=true: the old create never sent `tools`, so Jupyter never appeared."""
    templates = httpx.get(
        f"{simulator.v1_url}/templates", headers=simulator.auth_headers, timeout=5
    ).json()["template"]
    with_tools = next(t for t in templates if t.get("tools"))
    created = create(service, templateId=with_tools["Id"]).json()
    view = wait_status(service, created["instanceId"], "running")
    assert view["connectionDetails"].get("jupyter")


@BOTH
def test_a_spot_only_product_is_found(service, simulator) -> None:
    """products_default_billing=onDemand: the old catalogue listed /products without
    billingMethod, so a spot-only product was unknown (400) under that reading."""
    created = create(service, productName="RTX A6000 48GB", region="AS-SGP-02")
    assert created.status_code == 201, created.text
    wait_status(service, created.json()["instanceId"], "running")


@BOTH
def test_availability_is_judged_in_the_chosen_cluster(service, simulator) -> None:
    """product_ids=spanning: `4090.16c62g` has stock in other clusters but none in HK; without
    clusterId its availability is product-wide, so the old service picked it and Novita refused
    the create (failed). Asked per cluster, the dearer HK offer is chosen at once."""
    simulator.control.set_capacity(0, product_id="4090.16c62g.hk1", cluster_id="cn-hongkong-1")
    response = create(service)
    assert response.status_code == 201, response.text
    view = wait_status(service, response.json()["instanceId"], "running")
    assert view["productId"].startswith("4090.20c92g")
    assert view["clusterId"] == "cn-hongkong-1"


@BOTH
def test_a_capacity_refusal_falls_back_to_the_next_cheapest_offer(service, simulator) -> None:
    """capacity_error=message: the refusal's reason is not INSUFFICIENT_RESOURCE, only its
    message says so. The old service failed the request on any capacity refusal (and did not even
    recognise this one as capacity); now the next-cheapest offer in the region is tried, and the
    history names the offer used and the one refused."""
    warm = create(service, name="warm").json()  # fills the catalogue cache: the cheapest is open
    wait_status(service, warm["instanceId"], "running")
    simulator.control.set_capacity(0, product_id="4090.16c62g.hk1", cluster_id="cn-hongkong-1")
    created = create(service, name="fallback").json()
    assert created["productId"].startswith("4090.16c62g")  # the cached catalogue still says so
    view = wait_status(service, created["instanceId"], "running")
    assert view["productId"].startswith("4090.20c92g")
    assert view["pricePerHour"] > created["pricePerHour"]
    [reason] = [r for r in history(service, created["instanceId"]) if "created on Novita" in r]
    assert "4090.20c92g" in reason
    assert "refused for capacity" in reason
    assert "4090.16c62g" in reason


@BOTH
def test_names_with_underscores_are_sent_in_novitas_form(service, simulator) -> None:
    """name_rule=strict: Novita refuses `_`; the old service sent the name as given and the
    request failed. The row keeps the user's name."""
    created = create(service, name="train_llama_1").json()
    view = wait_status(service, created["instanceId"], "running")
    assert view["name"] == "train_llama_1"
    [upstream] = simulator.control.instances()
    assert upstream["name"] == "train-llama-1"


@ADVERSE
def test_a_transient_status_error_does_not_fail_the_create(service, simulator) -> None:
    """status_error=transient: statusError is set while pulling, then cleared; the old service
    failed the create at the first sight of it. Slowed down so several syncs see the error."""
    simulator.control.set_config(time_scale=0.05)
    created = create(service).json()
    wait_for(
        lambda: get(service, created["instanceId"]).get("novitaStatus") == "pulling",
        what="pulling",
    )
    view = wait_status(service, created["instanceId"], "running", timeout=30)
    assert view["lastError"] is None


@pytest.mark.parametrize("simulator_profile", ["lenient"], indirect=True)
def test_a_fatal_status_error_still_fails(service, simulator, webhook_receiver) -> None:
    """status_error=fatal_only: a real failure (the instance exited with statusError) fails at
    once, without waiting for the grace."""
    simulator.control.set_config(time_scale=1.0)
    created = create(service).json()
    view = wait_for(
        lambda: (v := get(service, created["instanceId"]))["novitaInstanceId"] and v,
        what="the upstream instance",
    )
    started = time.monotonic()
    simulator.control.fail(view["novitaInstanceId"], state="pullFailed", message="image not found")
    failed = wait_status(service, created["instanceId"], "failed")
    assert time.monotonic() - started < 30
    assert "image not found" in failed["lastError"]
