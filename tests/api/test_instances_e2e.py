"""The instance lifecycle end to end: the service and the simulator as real servers on 127.0.0.1,
a real webhook receiver, fast timings.

Every test runs under two opposite readings of Novita's API (issue 14, novita-api.md §12): the
simulator profiles `adverse` (pageNum 0 first with a cap of 20, reduced list items, spanning
product ids, on-demand-only default /products, capacity by message, transient statusError,
tools required, strict names) and `lenient` (the opposite on every point).
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from tests.fixtures.service import ServiceThread
from tests.fixtures.waiting import wait_for
from tests.fixtures.webhook_receiver import WebhookReceiver

HOOK_EVENTS = ("instance.running", "instance.failed", "instance.stopped", "instance.deleted")


def body(**fields: Any) -> dict[str, Any]:
    return {"name": "train-1", "productName": "RTX 4090 24GB", "templateId": "1", **fields}


def get(service: ServiceThread, instance_id: str) -> dict[str, Any]:
    response = httpx.get(f"{service.base_url}/api/instances/{instance_id}", timeout=5)
    assert response.status_code == 200, response.text
    return response.json()


def wait_status(service: ServiceThread, instance_id: str, status: str, timeout: float = 20):
    return wait_for(
        lambda: (view := get(service, instance_id))["status"] == status and view,
        timeout,
        f"status {status} of {instance_id}",
    )


def events(receiver: WebhookReceiver) -> list[dict[str, Any]]:
    import json

    return [json.loads(request.body) for request in receiver.requests()]


@pytest.fixture(params=["adverse", "lenient"])
def simulator_profile(request: pytest.FixtureRequest) -> str:
    """The simulator profile of every test here (overrides tests/fixtures/simulator.py's)."""
    return str(request.param)


@pytest.fixture
def service(simulator, make_service, webhook_receiver) -> ServiceThread:
    return make_service(simulator.base_url, WEBHOOK_URL=webhook_receiver.url)


def create(service: ServiceThread, headers: dict[str, str] | None = None, **fields: Any):
    return httpx.post(
        f"{service.base_url}/api/instances", json=body(**fields), headers=headers, timeout=15
    )


def test_happy_path_posts_to_running_and_notifies(service, simulator, webhook_receiver) -> None:
    response = create(service, templateId=1)
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["status"] == "creating"
    assert created["region"] == "CN-HK-01"
    assert created["productId"]
    assert created["pricePerHour"] > 0
    assert response.headers["Location"] == f"/api/instances/{created['instanceId']}"

    view = wait_status(service, created["instanceId"], "running")
    assert view["novitaStatus"] == "running"
    assert view["novitaInstanceId"]
    assert view["readyAt"]
    assert view["clusterId"] == "cn-hongkong-1"
    assert view["templateId"] == "1"
    assert view["portMappings"]
    assert view["stale"] is False
    assert get(service, view["novitaInstanceId"])["id"] == created["instanceId"]

    webhook_receiver.wait_for(1)
    [event] = events(webhook_receiver)
    assert event["type"] == "instance.running"
    assert event["data"]["instanceId"] == created["instanceId"]
    assert event["data"]["novitaInstanceId"] == view["novitaInstanceId"]
    assert event["data"]["instance"]["status"] == "running"
    assert event["data"]["elapsedTime"] >= 0

    [upstream] = simulator.control.instances()
    assert upstream["id"] == view["novitaInstanceId"]
    assert upstream["billingMode"] == "spot"
    assert any(env["key"] == "NOVITA_MANAGER_ID" for env in upstream["envs"])


def test_private_template_passes_the_credential_by_id(service, simulator) -> None:
    templates = httpx.get(
        f"{simulator.base_url}/v1/templates",
        params={"channel": "private"},
        headers={"Authorization": f"Bearer {simulator.api_key}"},
    ).json()["template"]
    private = next(t for t in templates if t["imageAuth"])
    created = create(service, templateId=private["Id"]).json()
    wait_status(service, created["instanceId"], "running")
    [upstream] = simulator.control.instances()
    assert upstream["imageAuthId"] == private["imageAuth"]
    assert "imageAuth" not in upstream or not upstream.get("imageAuth")


def test_new_instance_waiting_in_exited_is_started(service, simulator) -> None:
    simulator.control.set_config(autostart=False)
    created = create(service).json()
    wait_status(service, created["instanceId"], "running")
    calls = simulator.control.stats()["calls"]
    assert sum(calls.get("POST /gpu/instance/start", {}).values()) >= 1


@pytest.mark.parametrize(
    ("fields", "field", "fragment"),
    [
        ({"productName": "Voodoo 2"}, "productName", "No GPU product"),
        ({"templateId": "no-such-template"}, "templateId", "Unknown template"),
        ({"region": "AS-IN-01", "productName": "H100 80GB"}, "region", "No deployable"),
        ({"region": "MARS-01"}, "region", "Unknown region"),
        ({"rootfsSize": 6000}, "rootfsSize", "rootfsSize"),
    ],
)
def test_clear_4xx_for_what_can_be_checked_at_once(service, simulator, fields, field, fragment):
    response = create(service, **fields)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "VALIDATION_ERROR"
    assert fragment in error["message"]
    assert error["details"][0]["field"] == field
    assert simulator.control.instances() == []


def test_invalid_body_lists_every_field(service) -> None:
    response = httpx.post(
        f"{service.base_url}/api/instances",
        json={"name": "bad name!", "gpuNum": 9, "billingMode": "monthly", "webhookUrl": "ftp://x"},
    )
    assert response.status_code == 400
    fields = {item["field"] for item in response.json()["error"]["details"]}
    assert {"name", "productName", "templateId", "gpuNum", "billingMode", "webhookUrl"} <= fields


def test_novita_down_during_post_still_ends_running(service, simulator) -> None:
    simulator.control.set_faults([{"endpoint": "*", "kind": "error", "status": 503}])
    response = create(service)
    assert response.status_code == 201, response.text
    instance_id = response.json()["instanceId"]
    time.sleep(1.0)
    assert get(service, instance_id)["status"] == "creating"
    simulator.control.clear_faults()
    wait_status(service, instance_id, "running", timeout=30)
    assert len(simulator.control.instances()) == 1


def test_startup_timeout_fails_with_the_reason(simulator, make_service, webhook_receiver) -> None:
    simulator.control.set_config(time_scale=1.0)  # a real image pull: far longer than 1.5 s
    service = make_service(
        simulator.base_url, WEBHOOK_URL=webhook_receiver.url, INSTANCE_STARTUP_TIMEOUT="1.5"
    )
    created = create(service).json()
    view = wait_status(service, created["instanceId"], "failed")
    assert "did not reach running within 1.5 s" in view["lastError"]
    assert view["failedAt"]
    webhook_receiver.wait_for(1)
    [event] = events(webhook_receiver)
    assert event["type"] == "instance.failed"
    assert "did not reach running" in event["data"]["error"]


def test_status_error_fails_with_the_reason(service, simulator, webhook_receiver) -> None:
    simulator.control.set_config(time_scale=1.0)
    created = create(service).json()
    view = wait_for(
        lambda: (v := get(service, created["instanceId"]))["novitaInstanceId"] and v,
        what="the upstream instance",
    )
    simulator.control.fail(view["novitaInstanceId"], state="pullFailed", message="image not found")
    failed = wait_status(service, created["instanceId"], "failed")
    assert "image not found" in failed["lastError"]
    webhook_receiver.wait_for(1)
    assert events(webhook_receiver)[0]["type"] == "instance.failed"


def test_rejected_create_fails(service, simulator) -> None:
    simulator.control.set_faults(
        [{"endpoint": "POST /gpu/instance/create", "kind": "error", "status": 400}]
    )
    created = create(service).json()
    failed = wait_status(service, created["instanceId"], "failed")
    assert "Novita rejected the create" in failed["lastError"]


def test_commit_then_fail_create_adopts_the_one_instance(service, simulator) -> None:
    simulator.control.set_faults(
        [
            {
                "endpoint": "POST /gpu/instance/create",
                "kind": "commit_then_fail",
                "then": "error",
                "status": 502,
                "times": 1,
            }
        ]
    )
    created = create(service).json()
    view = wait_status(service, created["instanceId"], "running")
    upstream = simulator.control.instances()
    assert [item["id"] for item in upstream] == [view["novitaInstanceId"]]


def test_repeated_idempotency_key_creates_one_instance(service, simulator) -> None:
    headers = {"Idempotency-Key": "key-123"}
    first = create(service, headers=headers)
    second = create(service, headers=headers)
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    other = create(service, headers=headers, name="different")
    assert other.status_code == 422
    assert other.json()["error"]["code"] == "IDEMPOTENCY_KEY_REUSED"
    wait_status(service, first.json()["instanceId"], "running")
    assert len(simulator.control.instances()) == 1
    listing = httpx.get(f"{service.base_url}/api/instances").json()
    assert listing["total"] == 1


def test_a_retry_gets_its_first_answer_even_when_a_check_now_refuses_it(
    simulator, make_service, webhook_receiver
) -> None:
    """The key is looked up only when a create cannot go ahead (services/creation.py): a retry
    whose body the price cap now refuses still gets the 201 it got the first time."""
    service = make_service(simulator.base_url, WEBHOOK_URL=webhook_receiver.url, CACHE_TTL="0")
    headers = {"Idempotency-Key": "key-cap"}
    first = create(service, headers=headers, maxPricePerHour=5)
    assert first.status_code == 201, first.text
    offers = httpx.get(f"{service.base_url}/api/offers?productName=RTX%204090%2024GB").json()
    for product_id in {offer["productId"] for offer in offers["offers"]}:
        simulator.control.set_price(product_id, price=900_000, spot_price=900_000)  # 9 USD/h
    refused = create(service, maxPricePerHour=5)  # the same body without the key
    assert refused.status_code == 400, refused.text
    assert refused.json()["error"]["details"][0]["field"] == "maxPricePerHour"
    again = create(service, headers=headers, maxPricePerHour=5)
    assert again.status_code == 201, again.text
    assert again.json() == first.json()
    other = create(service, headers=headers, maxPricePerHour=6)  # refused, and another body
    assert other.status_code == 422
    assert other.json()["error"]["code"] == "IDEMPOTENCY_KEY_REUSED"


def test_stop_start_delete_and_conflicts(service, simulator, webhook_receiver) -> None:
    base = service.base_url
    instance_id = create(service).json()["instanceId"]
    wait_status(service, instance_id, "running")

    refused = httpx.post(f"{base}/api/instances/{instance_id}/start")
    assert refused.status_code == 409
    assert "running" in refused.json()["error"]["message"]

    stop = httpx.post(f"{base}/api/instances/{instance_id}/stop")
    assert stop.status_code == 202
    assert stop.json()["status"] == "stopping"
    stopped = wait_status(service, instance_id, "stopped")
    assert stopped["novitaStatus"] == "exited"
    assert httpx.post(f"{base}/api/instances/{instance_id}/stop").status_code == 409

    start = httpx.post(f"{base}/api/instances/start", json={"instanceName": "train-1"})
    assert start.status_code == 202, start.text
    wait_status(service, instance_id, "running")

    delete = httpx.delete(f"{base}/api/instances/{instance_id}")
    assert delete.status_code == 202
    wait_status(service, instance_id, "deleted")
    assert httpx.delete(f"{base}/api/instances/{instance_id}").status_code == 409
    assert [i["removed"] for i in simulator.control.instances()] == [True]

    webhook_receiver.wait_for(4)
    assert [e["type"] for e in events(webhook_receiver)] == [
        "instance.running",
        "instance.stopped",
        "instance.running",
        "instance.deleted",
    ]
    listing = httpx.get(f"{base}/api/instances").json()
    assert listing["total"] == 0
    deleted = httpx.get(f"{base}/api/instances", params={"status": "deleted"}).json()
    assert deleted["total"] == 1


def test_unknown_instance_is_404(service) -> None:
    for response in (
        httpx.get(f"{service.base_url}/api/instances/nope"),
        httpx.post(f"{service.base_url}/api/instances/nope/stop"),
        httpx.delete(f"{service.base_url}/api/instances/nope"),
        httpx.post(f"{service.base_url}/api/instances/stop", json={"instanceName": "nope"}),
    ):
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "INSTANCE_NOT_FOUND"


def test_list_filters_and_paginates(service) -> None:
    for index in range(5):
        assert create(service, name=f"job-{index}").status_code == 201
    base = service.base_url
    page = httpx.get(f"{base}/api/instances", params={"limit": 2, "offset": 1}).json()
    assert (page["total"], page["limit"], page["offset"]) == (5, 2, 1)
    assert [i["name"] for i in page["instances"]] == ["job-3", "job-2"]
    named = httpx.get(f"{base}/api/instances", params={"name": "job-4"}).json()
    assert [i["name"] for i in named["instances"]] == ["job-4"]
    bad = httpx.get(f"{base}/api/instances", params={"status": "sleeping", "limit": 0})
    assert bad.status_code == 400
    assert {d["field"] for d in bad.json()["error"]["details"]} == {"status", "limit"}


def test_get_answers_stale_while_novita_is_down(service, simulator) -> None:
    instance_id = create(service).json()["instanceId"]
    wait_status(service, instance_id, "running")
    simulator.control.set_faults([{"endpoint": "*", "kind": "error", "status": 500}])
    view = wait_for(lambda: (v := get(service, instance_id))["stale"] and v, what="stale")
    assert view["status"] == "running"
    simulator.control.clear_faults()
    wait_for(lambda: not get(service, instance_id)["stale"], what="fresh again")


def test_api_keys_protect_the_api(simulator, make_service) -> None:
    service = make_service(simulator.base_url, API_KEYS="k-one,k-two")
    url = f"{service.base_url}/api/instances"
    assert httpx.get(url).status_code == 401
    assert httpx.get(url, headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert httpx.get(url, headers={"Authorization": "Bearer k-two"}).status_code == 200
    assert httpx.get(url).json()["error"]["code"] == "UNAUTHORIZED"


def test_full_lifecycle_on_each_database(
    database_url, simulator, make_service, webhook_receiver
) -> None:
    service = make_service(simulator.base_url, database_url, WEBHOOK_URL=webhook_receiver.url)
    base = service.base_url
    instance_id = create(service).json()["instanceId"]
    wait_status(service, instance_id, "running")
    assert httpx.post(f"{base}/api/instances/{instance_id}/stop").status_code == 202
    wait_status(service, instance_id, "stopped")
    assert httpx.delete(f"{base}/api/instances/{instance_id}").status_code == 202
    wait_status(service, instance_id, "deleted")
    webhook_receiver.wait_for(3)
    assert [e["type"] for e in events(webhook_receiver)] == [
        "instance.running",
        "instance.stopped",
        "instance.deleted",
    ]
    history = httpx.get(f"{base}/api/instances/{instance_id}/webhooks").json()["deliveries"]
    assert {d["status"] for d in history} == {"delivered"}


def test_spot_reclaim_is_noticed_and_notified(service, simulator, webhook_receiver) -> None:
    instance_id = create(service).json()["instanceId"]
    view = wait_status(service, instance_id, "running")
    simulator.control.reclaim(view["novitaInstanceId"])
    stopped = wait_status(service, instance_id, "stopped")
    assert stopped["novitaStatus"] == "exited"
    webhook_receiver.wait_for(4)  # running, then the reclaim's warnings, then stopped
    assert [e["type"] for e in events(webhook_receiver)] == [
        "instance.running",
        "instance.reclaiming",
        "instance.reclaimed",
        "instance.stopped",
    ]
    last = events(webhook_receiver)[-1]
    assert last["data"]["instance"]["status"] == "stopped"
    restart = httpx.post(f"{service.base_url}/api/instances/{instance_id}/start")
    assert restart.status_code == 202
    wait_status(service, instance_id, "running")  # start is refused for capacity: migrated
    calls = simulator.control.stats()["calls"]
    assert sum(calls["POST /gpu/instance/migrate"].values()) == 1


def _create_upstream(simulator, marker: str) -> str:
    # The product id depends on the profile (`4090.16c62g` spans clusters under `adverse`).
    products = httpx.get(
        f"{simulator.base_url}/v1/products",
        params={"clusterId": "cn-hongkong-1", "billingMethod": "spot"},
        headers={"Authorization": f"Bearer {simulator.api_key}"},
    ).json()["data"]
    product_id = next(p["id"] for p in products if p["id"].startswith("4090.16c62g"))
    response = httpx.post(
        f"{simulator.base_url}/v1/gpu/instance/create",
        headers={"Authorization": f"Bearer {simulator.api_key}"},
        json={
            "name": "stray",
            "productId": product_id,
            "clusterId": "cn-hongkong-1",
            "gpuNum": 1,
            "rootfsSize": 60,
            "imageUrl": "pytorch/pytorch:latest",
            "kind": "gpu",
            "billingMode": "spot",
            "envs": [{"key": "NOVITA_MANAGER_ID", "value": marker}],
        },
    )
    assert response.status_code == 200, response.text
    return str(response.json()["id"])


def test_stray_instances_with_our_marker_are_never_left_running(service, simulator) -> None:
    """A duplicate, or a late instance for a request that already failed, is deleted; an
    instance marked by someone else is left alone."""
    running_id = create(service).json()["instanceId"]
    wait_status(service, running_id, "running")
    simulator.control.set_faults(
        [{"endpoint": "POST /gpu/instance/create", "kind": "error", "status": 400, "times": 1}]
    )
    failed_id = create(service, name="train-2").json()["instanceId"]
    wait_status(service, failed_id, "failed")

    duplicate = _create_upstream(simulator, running_id)
    late = _create_upstream(simulator, failed_id)
    foreign = _create_upstream(simulator, "someone-else")

    def removed() -> dict[str, bool]:
        return {item["id"]: item["removed"] for item in simulator.control.instances()}

    wait_for(lambda: removed()[duplicate] and removed()[late], what="strays deleted")
    assert removed()[foreign] is False
    assert get(service, running_id)["status"] == "running"


def test_request_id_follows_the_work_into_the_background(
    captured_logs, simulator, make_service
) -> None:
    service = make_service(simulator.base_url, LOG_LEVEL="info")
    response = httpx.post(
        f"{service.base_url}/api/instances",
        json=body(),
        headers={"X-Request-ID": "trace-create-42"},
    )
    assert response.headers["X-Request-ID"] == "trace-create-42"
    wait_status(service, response.json()["instanceId"], "running")
    background = [
        record
        for record in captured_logs.records
        if record.get("pipeline") == "provisioning" and record.get("event") == "instance_status"
    ]
    assert background
    assert {record["request_id"] for record in background} == {"trace-create-42"}


def test_api_rate_limit_answers_429_with_retry_after(simulator, make_service) -> None:
    # One request per 5 s with a burst of one: the refill cannot hide the limit on a busy machine.
    service = make_service(simulator.base_url, API_RATE_LIMIT="0.2")
    url = f"{service.base_url}/api/instances"
    statuses = [httpx.get(url).status_code for _ in range(4)]
    assert statuses == [200, 429, 429, 429]
    limited = httpx.get(url)
    assert limited.status_code == 429
    assert limited.json()["error"]["code"] == "RATE_LIMITED"
    assert int(limited.headers["Retry-After"]) >= 1
    assert httpx.get(f"{service.base_url}/health/live").status_code == 200  # not limited
    # Without API_KEYS a client is its address: another Authorization header is no escape.
    rotated = httpx.get(url, headers={"Authorization": "Bearer someone"})
    assert rotated.status_code == 429


def test_novita_refusing_our_key_is_a_502(simulator, make_service) -> None:
    simulator.control.set_faults([{"endpoint": "*", "kind": "error", "status": 401}])
    service = make_service(simulator.base_url)
    response = create(service)
    assert response.status_code == 502
    error = response.json()["error"]
    assert error["code"] == "UPSTREAM_ERROR"
    assert "NOVITA_API_KEY" in error["message"]
    assert error["details"]["upstreamStatus"] == 401
