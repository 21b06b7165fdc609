"""GET /health, /health/live and /health/ready in each state: healthy, Novita down, circuit open,
backlog and webhook failures, database down (a real PostgreSQL server stopped under the service)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from novita_manager.app import create_app
from novita_manager.config import load_settings
from novita_manager.services.health import BACKLOG_MAX_AGE
from novita_manager.services.runtime import Runtime
from novita_manager.store.models import Instance, WebhookAttempt, WebhookDelivery
from novita_manager.store.types import utcnow
from tests.fixtures.postgres import PostgresServer, PostgresUnavailable, find_bindir
from tests.fixtures.service import FAST, ServiceThread


def get(service: ServiceThread, path: str) -> httpx.Response:
    return httpx.get(f"{service.base_url}{path}", timeout=15)


def test_healthy_live_ready_and_open_without_api_key(simulator, make_service) -> None:
    service = make_service(simulator.base_url, API_KEYS="k-one,k-two")
    assert get(service, "/api/instances").status_code == 401  # /api needs a key ...
    health = get(service, "/health")  # ... health and metrics do not
    assert health.status_code == 200, health.text
    body = health.json()
    assert body["status"] == "healthy"
    assert body["version"]
    assert body["timestamp"].endswith("Z")
    checks = body["checks"]
    assert checks["database"]["status"] == "ok"
    assert checks["database"]["dialect"] == "sqlite"
    assert (
        checks["novita"] | {"circuit": "closed", "reachable": True, "status": "ok"}
        == checks["novita"]
    )
    assert checks["pipelines"]["provisioning"] == {"dueRows": 0, "oldestDueAgeSeconds": None}
    assert checks["webhooks"] == {
        "status": "ok",
        "failedLastHour": 0,
        "retrying": 0,
        "waiting": {"closed": 0, "open": 0, "half_open": 0},
        "oldestPendingAgeSeconds": None,
        "maxPendingAgeSeconds": 300.0,
    }
    assert "k-one" not in health.text

    live = get(service, "/health/live")
    assert live.status_code == 200
    assert live.json()["status"] == "alive"
    ready = get(service, "/health/ready")
    assert ready.status_code == 200, ready.text
    migrations = ready.json()["checks"]["migrations"]
    assert migrations["status"] == "ok"
    assert migrations["current"] == migrations["head"]
    assert get(service, "/metrics").status_code == 200


def test_novita_down_is_degraded_and_probed_at_most_once_per_interval(
    simulator, make_service
) -> None:
    # The circuit stays closed, so the probe's own error (not "circuit open") is reported.
    service = make_service(simulator.base_url, CIRCUIT_FAILURE_THRESHOLD="1000")
    simulator.control.set_faults([{"endpoint": "*", "kind": "error", "status": 500}])
    first = get(service, "/health")
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["status"] == "degraded"
    novita = body["checks"]["novita"]
    assert novita["status"] == "degraded"
    assert novita["reachable"] is False
    assert novita["lastProbe"]["ok"] is False
    assert "500" in novita["error"]
    assert body["checks"]["database"]["status"] == "ok"

    calls = simulator.control.stats()
    for _ in range(5):
        again = get(service, "/health").json()
        assert again["status"] == "degraded"
        assert again["checks"]["novita"]["lastProbe"] == novita["lastProbe"]  # cached
    assert simulator.control.stats() == calls  # no upstream call per health check


def test_circuit_open_is_degraded_with_the_state(simulator, make_service) -> None:
    service = make_service(
        simulator.base_url, CIRCUIT_FAILURE_THRESHOLD="2", CIRCUIT_RESET_TIMEOUT="60"
    )
    simulator.control.set_faults([{"endpoint": "*", "kind": "error", "status": 503}])
    get(service, "/health")  # the probe fails three times: the circuit opens
    body = get(service, "/health").json()
    assert body["status"] == "degraded"
    novita = body["checks"]["novita"]
    assert novita["circuit"] == "open"
    assert novita["reachable"] is False
    assert "circuit open" in novita["error"]
    metrics = get(service, "/metrics").text
    assert "novita_manager_circuit_state 2.0" in metrics


def test_database_down_is_unhealthy_and_not_ready(simulator, make_service, captured_logs) -> None:
    """A PostgreSQL-backed service whose database server is stopped under it.

    `captured_logs` configures JSON logs: the default console renderer draws every failing
    pipeline step's traceback with locals, slowly enough to stall the service's event loop."""
    bindir = find_bindir()
    if bindir is None:
        pytest.skip("PostgreSQL not installed: apt-get install postgresql")
    try:
        server = PostgresServer(bindir).start()
    except PostgresUnavailable as error:
        pytest.skip(f"PostgreSQL could not start: {error}")
    try:
        service = make_service(simulator.base_url, server.url())
        assert get(service, "/health").json()["checks"]["database"]["dialect"] == "postgresql"
        assert get(service, "/health/ready").status_code == 200
        server.stop()

        down = get(service, "/health")
        assert down.status_code == 503, down.text
        body = down.json()
        assert body["status"] == "unhealthy"
        assert body["checks"]["database"]["status"] == "down"
        assert body["checks"]["database"]["error"]
        assert body["checks"]["pipelines"]["status"] == "unknown"
        assert body["checks"]["webhooks"]["status"] == "unknown"
        assert body["checks"]["novita"]["status"] == "ok"  # still checked
        ready = get(service, "/health/ready")
        assert ready.status_code == 503
        assert ready.json()["status"] == "not_ready"
        assert get(service, "/health/live").status_code == 200
        api = get(service, "/api/instances")
        assert api.status_code == 503, api.text
        assert api.json()["error"]["code"] == "SERVICE_UNAVAILABLE"
    finally:
        server.stop()


# Backlog and webhook failures: the runtime without its background work, so rows stay due.


@pytest.fixture
async def quiet_app(simulator, tmp_path: Path) -> AsyncIterator[tuple[Runtime, httpx.AsyncClient]]:
    env = {key.lower(): value for key, value in FAST.items()}
    settings = load_settings(
        **env,
        novita_api_base_url=simulator.base_url,
        database_url=f"sqlite+aiosqlite:///{tmp_path}/quiet.db",
    )
    runtime = await Runtime.open(settings, background=False)
    app = create_app(settings)
    app.state.runtime = runtime
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield runtime, client
    finally:
        await runtime.close()


def instance_row(instance_id: str, **values: Any) -> Instance:
    return Instance(
        id=instance_id,
        name=instance_id,
        status="creating",
        product_name="RTX 4090 24GB",
        template_id="1",
        gpu_num=1,
        rootfs_size=60,
        region="CN-HK-01",
        billing_mode="spot",
        **values,
    )


async def test_old_backlog_is_degraded_with_the_oldest_age(quiet_app) -> None:
    runtime, client = quiet_app
    now = utcnow()
    async with runtime.db.session() as session, session.begin():
        session.add(instance_row("old", next_attempt_at=now - timedelta(hours=1)))
        session.add(instance_row("new", next_attempt_at=now - timedelta(seconds=1)))
        session.add(instance_row("later", next_attempt_at=now + timedelta(hours=1)))
        session.add(  # leased by another replica: in work, not backlog
            instance_row(
                "leased",
                next_attempt_at=now - timedelta(hours=2),
                lock_token="t",
                lock_expires_at=now + timedelta(minutes=1),
            )
        )
    response = await client.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "degraded"
    pipelines = body["checks"]["pipelines"]
    assert pipelines["status"] == "degraded"
    assert pipelines["provisioning"]["dueRows"] == 2
    assert 3600 <= pipelines["provisioning"]["oldestDueAgeSeconds"] < 3600 + 60
    assert pipelines["webhookDelivery"] == {"dueRows": 0, "oldestDueAgeSeconds": None}

    metrics = (await client.get("/metrics")).text
    assert 'novita_manager_pipeline_due_rows{pipeline="provisioning"} 2.0' in metrics
    assert 'novita_manager_instances{status="creating"} 4.0' in metrics


async def test_recent_backlog_is_healthy(quiet_app) -> None:
    runtime, client = quiet_app
    async with runtime.db.session() as session, session.begin():
        due = utcnow() - timedelta(seconds=BACKLOG_MAX_AGE / 2)
        session.add(instance_row("fresh", next_attempt_at=due))
    body = (await client.get("/health")).json()
    assert body["checks"]["pipelines"]["status"] == "ok"
    assert body["checks"]["pipelines"]["provisioning"]["dueRows"] == 1
    assert body["status"] == "healthy"


async def test_webhook_failure_in_the_last_hour_is_degraded(quiet_app) -> None:
    runtime, client = quiet_app
    now = utcnow()
    async with runtime.db.session() as session, session.begin():
        session.add(instance_row("i1"))
        await session.flush()
        for delivery_id, status, attempts in (("d-failed", "failed", 4), ("d-retry", "pending", 1)):
            session.add(
                WebhookDelivery(
                    id=delivery_id,
                    instance_id="i1",
                    event_type="instance.running",
                    url="https://hooks.example.com/x?token=secret-token",
                    payload={},
                    status=status,
                    attempts=attempts,
                    next_attempt_at=now + timedelta(hours=1) if status == "pending" else None,
                )
            )
        await session.flush()
        session.add(WebhookAttempt(delivery_id="d-failed", attempted_at=now, status_code=500))
        session.add(  # an old failure no longer counts
            WebhookAttempt(delivery_id="d-retry", attempted_at=now - timedelta(hours=3), error="x")
        )
    response = await client.get("/health")
    body = response.json()
    assert response.status_code == 200
    assert body["status"] == "degraded"
    webhooks = body["checks"]["webhooks"]
    assert webhooks.pop("oldestPendingAgeSeconds") < 60
    assert webhooks == {
        "status": "degraded",
        "failedLastHour": 1,
        "retrying": 1,
        "waiting": {"closed": 1, "open": 0, "half_open": 0},
        "maxPendingAgeSeconds": 300.0,
    }
    assert "secret-token" not in response.text


async def test_old_pending_webhook_is_degraded_naming_the_host_only(quiet_app) -> None:
    runtime, client = quiet_app
    now = utcnow()
    async with runtime.db.session() as session, session.begin():
        session.add(instance_row("i1"))
        await session.flush()
        for delivery_id, url, age in (
            ("d-old", "https://slow.example.com:8443/x?token=secret-token", 900),
            ("d-new", "https://fast.example.com/y", 1),
        ):
            session.add(
                WebhookDelivery(
                    id=delivery_id,
                    instance_id="i1",
                    event_type="instance.running",
                    url=url,
                    payload={},
                    status="pending",
                    attempts=1,
                    created_at=now - timedelta(seconds=age),
                    next_attempt_at=now + timedelta(hours=1),
                )
            )
    response = await client.get("/health")
    body = response.json()
    webhooks = body["checks"]["webhooks"]
    assert body["status"] == "degraded"
    assert webhooks["status"] == "degraded"
    assert webhooks["worstDestination"] == "slow.example.com"
    assert 900 <= webhooks["oldestPendingAgeSeconds"] < 960
    assert webhooks["waiting"] == {"closed": 2, "open": 0, "half_open": 0}
    assert "secret-token" not in response.text
    metrics = (await client.get("/metrics")).text
    assert 'novita_manager_webhook_deliveries_waiting{state="closed"} 2.0' in metrics


async def test_not_started_is_unhealthy_and_not_ready(tmp_path: Path) -> None:
    settings = load_settings(
        novita_api_base_url="http://127.0.0.1:9/gpu-instance/openapi",
        database_url=f"sqlite+aiosqlite:///{tmp_path}/x.db",
    )
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app)  # no lifespan: the runtime never opened
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        assert (await client.get("/health")).status_code == 503
        assert (await client.get("/health/ready")).status_code == 503
        assert (await client.get("/health/live")).status_code == 200
