"""GET /metrics after a real lifecycle: an instance created through the API against the simulator,
running, its webhook delivered; every series of the contract is present with its labels."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.fixtures.service import ServiceThread
from tests.fixtures.waiting import wait_for

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(service: ServiceThread) -> Samples:
    response = httpx.get(f"{service.base_url}/metrics", timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def test_series_after_a_lifecycle(simulator, make_service, webhook_receiver) -> None:
    service = make_service(simulator.base_url, WEBHOOK_URL=webhook_receiver.url)
    base = service.base_url
    body = {"name": "metrics-1", "productName": "RTX 4090 24GB", "templateId": "1"}
    created = httpx.post(f"{base}/api/instances", json=body, timeout=15)
    assert created.status_code == 201, created.text
    instance_id = created.json()["instanceId"]
    wait_for(lambda: httpx.get(f"{base}/api/instances/{instance_id}").json()["status"] == "running")
    webhook_receiver.wait_for(1)
    assert httpx.get(f"{base}/api/instances/no-such-id").status_code == 404
    assert httpx.get(f"{base}/no/such/route/12345").status_code == 404

    s = wait_for(
        lambda: (
            (got := scrape(service))
            and value(got, "novita_manager_webhook_deliveries_total", outcome="delivered")
            and got
        )
    )
    # HTTP requests by method, route template (never the raw path) and status; latency.
    http = "novita_manager_http_requests_total"
    assert value(s, http, method="POST", route="/api/instances", status="201") == 1
    assert value(s, http, method="GET", route="/api/instances/{instanceId}", status="200")
    assert value(s, http, method="GET", route="/api/instances/{instanceId}", status="404") == 1
    assert value(s, http, method="GET", route="unmatched", status="404") == 1
    assert not any(instance_id in str(labels) for _, labels in s)
    latency = "novita_manager_http_request_duration_seconds_count"
    assert value(s, latency, method="POST", route="/api/instances") == 1

    # Upstream calls by endpoint and outcome, their latency; circuit closed.
    upstream = "novita_manager_upstream_calls_total"
    assert value(s, upstream, endpoint="POST /gpu/instance/create", outcome="ok") == 1
    assert value(s, upstream, endpoint="GET /products", outcome="ok")
    assert value(s, upstream, endpoint="GET /gpu/instances", outcome="ok")  # the status sync
    assert value(s, "novita_manager_upstream_call_duration_seconds_count", endpoint="GET /products")
    assert value(s, "novita_manager_circuit_state") == 0

    # Catalogue cache hits and misses.
    cache = "novita_manager_cache_events_total"
    assert value(s, cache, cache="products", result="miss")
    assert value(s, cache, cache="templates", result="hit")

    # Pipelines: rows processed, lag, due rows (sampled at scrape time).
    processed = "novita_manager_pipeline_rows_processed_total"
    assert value(s, processed, pipeline="provisioning", outcome="ok")
    assert value(s, processed, pipeline="webhook_delivery", outcome="ok")
    assert value(s, "novita_manager_pipeline_lag_seconds_count", pipeline="provisioning")
    assert value(s, "novita_manager_pipeline_due_rows", pipeline="provisioning") == 0
    assert value(s, "novita_manager_pipeline_due_rows", pipeline="webhook_delivery") == 0

    # Webhook deliveries by outcome; instances by status (every status present).
    assert value(s, "novita_manager_webhook_deliveries_total", outcome="delivered") == 1
    assert value(s, "novita_manager_instances", status="running") == 1
    assert value(s, "novita_manager_instances", status="failed") == 0


def test_retries_are_counted(simulator, make_service) -> None:
    service = make_service(simulator.base_url)
    simulator.control.set_faults(
        [{"endpoint": "GET /clusters", "kind": "error", "status": 502, "times": 1}]
    )
    assert httpx.get(f"{service.base_url}/health", timeout=10).json()["status"] == "healthy"
    s = scrape(service)
    retries = "novita_manager_upstream_retries_total"
    assert value(s, retries, endpoint="GET /clusters") == 1
    upstream = "novita_manager_upstream_calls_total"
    assert value(s, upstream, endpoint="GET /clusters", outcome="server_error") == 1
