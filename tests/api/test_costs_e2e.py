"""Cost to date end to end: the service's estimate against the simulator's exact billing, across
a stop and start, a price change, a SIGKILL of the service and a delete; and GET /api/costs."""

from __future__ import annotations

import time
from typing import Any

import httpx

from tests.api.test_instances_e2e import create, get, wait_status


def billed_upstream(simulator: Any, novita_id: str) -> dict[str, Any]:
    records = {item["id"]: item for item in simulator.control.instances()}
    return records[novita_id]


def operate(base_url: str, instance_id: str, operation: str) -> None:
    url = f"{base_url}/api/instances/{instance_id}"
    response = (
        httpx.delete(url, timeout=15)
        if operation == "delete"
        else httpx.post(f"{url}/{operation}", timeout=15)
    )
    assert response.status_code == 202, response.text


def test_cost_to_date_matches_the_simulators_billing_across_restarts_and_a_price_change(
    simulator, make_service_process, database_url
) -> None:
    """SQLite: the one process is SIGKILLed and started again. PostgreSQL: two replicas share
    the database; one is SIGKILLed and the other carries on (sync lease, pipelines)."""
    # Novita's status is seen once per poll interval, and each edge of a billed period is
    # placed halfway between two sightings: a short interval keeps the estimate close.
    fast = {"INSTANCE_POLL_INTERVAL": "0.05"}
    service = make_service_process(simulator.base_url, database_url, **fast).start()
    replica = None
    if database_url.startswith("postgresql"):
        replica = make_service_process(simulator.base_url, database_url, **fast).start()
    created = create(service, name="costly", rootfsSize=100, billingMode="onDemand")
    assert created.status_code == 201, created.text
    instance_id = created.json()["instanceId"]
    view = wait_status(service, instance_id, "running", 60)
    novita_id, product_id = view["novitaInstanceId"], view["productId"]
    first_price = view["pricePerHour"]
    time.sleep(6)
    operate(service.base_url, instance_id, "stop")
    wait_status(service, instance_id, "stopped", 30)
    time.sleep(1)  # stopped: billed nothing
    stopped = get(service, instance_id)
    upstream = billed_upstream(simulator, novita_id)
    assert abs(stopped["billedSeconds"] - upstream["billedSeconds"]) < 0.3

    simulator.control.set_price(product_id, price=70_000)  # $0.70/h per GPU from now on
    operate(service.base_url, instance_id, "start")
    restarted = wait_status(service, instance_id, "running", 60)
    assert restarted["pricePerHour"] == 0.7 != first_price
    time.sleep(5)
    service.kill()  # SIGKILL: the open period is in the database, the GPU keeps billing
    time.sleep(1.5)
    if replica is None:
        service.start()
    else:
        service = replica
    time.sleep(5)
    operate(service.base_url, instance_id, "delete")
    wait_status(service, instance_id, "deleted", 60)

    final = get(service, instance_id)
    upstream = billed_upstream(simulator, novita_id)
    assert upstream["removed"] or upstream["status"] in ("removing", "removed")
    ours, theirs = final["costToDate"], upstream["accruedCostUsd"]
    assert theirs > 0
    summary = {
        "ours": (ours, final["billedSeconds"]),
        "theirs": (theirs, upstream["billedSeconds"], upstream["billingRateUsd"]),
    }
    print(f"cost to date: {summary}")  # shown with -s: the figures of the comparison
    assert abs(ours - theirs) / theirs < 0.01, summary
    seconds = upstream["billedSeconds"]
    assert abs(final["billedSeconds"] - seconds) / seconds < 0.01, (final, upstream)
    time.sleep(0.5)  # deleted: the cost no longer grows
    assert get(service, instance_id)["costToDate"] == ours

    costs = httpx.get(f"{service.base_url}/api/costs", params={"groupBy": "instance"}, timeout=5)
    assert costs.status_code == 200, costs.text
    body = costs.json()
    [group] = [g for g in body["groups"] if g["key"] == instance_id]
    assert abs(group["cost"] - ours) < 1e-6
    assert abs(body["total"]["cost"] - ours) < 1e-6
    by_day = httpx.get(f"{service.base_url}/api/costs", params={"groupBy": "day"}, timeout=5)
    assert abs(sum(g["cost"] for g in by_day.json()["groups"]) - ours) < 1e-6
    assert by_day.json()["spendRatePerHour"] == 0  # nothing runs now

    metrics = httpx.get(f"{service.base_url}/metrics", timeout=10).text
    labels = f'product="{view["productName"]}",region="{view["region"]}"'
    assert f"novita_manager_spend_rate_usd_per_hour{{{labels}}} 0.0" in metrics
    [line] = [x for x in metrics.splitlines() if x.startswith("novita_manager_cost_to_date_usd{")]
    assert line.startswith(f"novita_manager_cost_to_date_usd{{{labels}}} ")
    assert abs(float(line.split()[-1]) - ours) < 1e-6
