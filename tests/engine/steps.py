"""Helpers of the step-level tests: a managed row in a real database, claimed the way the
pipeline claims it, one step run on it, and the rows read back afterwards.

The steps talk to the real simulator over HTTP (`simulator` fixture) through the service's own
client; `StepContext` counts the wake-ups a step asks for.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from novita_manager.config import Settings
from novita_manager.domain.statuses import CreateState, Operation, Status
from novita_manager.engine.leases import Lease
from novita_manager.engine.provisioning.context import StepContext
from novita_manager.novita.catalogue import Catalogue
from novita_manager.novita.create_request import MARKER_ENV, novita_name
from novita_manager.services.upstream import novita_client
from novita_manager.simulator.server import SimulatorServer
from novita_manager.store.db import Database
from novita_manager.store.models import Instance, InstanceEvent, OperationRequest, WebhookDelivery
from novita_manager.store.types import utcnow
from tests.fixtures.waiting import wait_for

PRODUCT = "RTX 4090 24GB"
WEBHOOK = "http://127.0.0.1:9/hook"


def step_settings(simulator: SimulatorServer) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        novita_api_base_url=simulator.base_url,
        instance_poll_interval=0.2,
        instance_startup_timeout=30,
        request_timeout=2,
        max_retry_attempts=1,
        retry_backoff_base=0.02,
        circuit_reset_timeout=0.5,
    )


@dataclass
class Wakes:
    outbox: int = 0
    upstream: int = 0
    extra: list[str] = field(default_factory=list)


@dataclass
class Steps:
    """A step context on `db` and the simulator, with the wake-ups it asked for."""

    ctx: StepContext
    wakes: Wakes
    simulator: SimulatorServer

    @property
    def db(self) -> Database:
        return self.ctx.db


@pytest.fixture
async def steps(db: Database, simulator: SimulatorServer) -> AsyncIterator[Steps]:
    settings = step_settings(simulator)
    client = novita_client(settings)
    wakes = Wakes()

    def outbox() -> None:
        wakes.outbox += 1

    def upstream() -> None:
        wakes.upstream += 1

    ctx = StepContext(
        db=db,
        client=client,
        catalogue=Catalogue(client, settings.cache_ttl),
        settings=settings,
        on_outbox=outbox,
        on_upstream_change=upstream,
    )
    try:
        yield Steps(ctx, wakes, simulator)
    finally:
        await client.aclose()


async def insert_instance(db: Database, **columns: Any) -> str:
    """A row as the API inserts a create (creating, create pending), with `columns` changed."""
    now = utcnow()
    instance_id = columns.pop("id", uuid.uuid4().hex)
    values: dict[str, Any] = {
        "id": instance_id,
        "name": "train-1",
        "status": Status.CREATING.value,
        "operation": Operation.CREATE.value,
        "operation_started_at": now,
        "operation_issued": False,
        "create_state": CreateState.PENDING.value,
        "create_attempts": 0,
        "product_name": PRODUCT,
        "template_id": "1",
        "gpu_num": 1,
        "rootfs_size": 60,
        "region": "CN-HK-01",
        "billing_mode": "spot",
        "webhook_url": WEBHOOK,
        "port_mappings": [],
        "connection_details": {},
        "created_at": now,
        "updated_at": now,
        "next_attempt_at": now,
        "attempts": 0,
    }
    values.update(columns)
    async with db.session() as session, session.begin():
        session.add(Instance(**values))
    return str(instance_id)


async def add_request(
    db: Database, instance_id: str, seq: int, operation: Operation, state: str = "pending"
) -> None:
    async with db.session() as session, session.begin():
        session.add(
            OperationRequest(
                instance_id=instance_id,
                seq=seq,
                operation=operation.value,
                state=state,
                requested_at=utcnow(),
            )
        )
        await session.execute(
            update(Instance).where(Instance.id == instance_id).values(request_seq=seq)
        )


async def claim(db: Database, instance_id: str) -> tuple[Lease, Instance]:
    """Lease the row as the pipeline's claim does; the row is a detached snapshot."""
    lease = Lease(instance_id, uuid.uuid4().hex, "step-test")
    async with db.session() as session, session.begin():
        await session.execute(
            update(Instance)
            .where(Instance.id == instance_id)
            .values(
                lock_owner=lease.owner,
                lock_token=lease.token,
                lock_expires_at=utcnow() + timedelta(seconds=30),
            )
        )
    return lease, await load(db, instance_id)


async def load(db: Database, instance_id: str) -> Instance:
    async with db.read_session() as session:
        row = await session.get(Instance, instance_id)
    assert row is not None
    return row


async def history(db: Database, instance_id: str) -> list[InstanceEvent]:
    async with db.read_session() as session:
        query = select(InstanceEvent).where(InstanceEvent.instance_id == instance_id)
        return list((await session.scalars(query.order_by(InstanceEvent.id))).all())


async def deliveries(db: Database, instance_id: str) -> list[WebhookDelivery]:
    async with db.read_session() as session:
        query = select(WebhookDelivery).where(WebhookDelivery.instance_id == instance_id)
        return list((await session.scalars(query.order_by(WebhookDelivery.created_at))).all())


async def requests_of(db: Database, instance_id: str) -> dict[int, tuple[str, str | None]]:
    async with db.read_session() as session:
        rows = (
            await session.execute(
                select(OperationRequest.seq, OperationRequest.state, OperationRequest.reason)
                .where(OperationRequest.instance_id == instance_id)
                .order_by(OperationRequest.seq)
            )
        ).all()
    return {seq: (state, reason) for seq, state, reason in rows}


def create_upstream(simulator: SimulatorServer, marker: str, name: str = "train-1") -> str:
    """An instance made directly on the simulator, carrying the marker of row `marker`."""
    headers = simulator.auth_headers
    with httpx.Client(base_url=simulator.v1_url, headers=headers, timeout=10) as http:
        products = http.get(
            "/products", params={"clusterId": "cn-hongkong-1", "billingMethod": "spot"}
        ).json()["data"]
        product_id = next(p["id"] for p in products if p["id"].startswith("4090.16c62g"))
        response = http.post(
            "/gpu/instance/create",
            json={
                "name": novita_name(name),
                "productId": product_id,
                "clusterId": "cn-hongkong-1",
                "gpuNum": 1,
                "rootfsSize": 60,
                "imageUrl": "pytorch/pytorch:latest",
                "kind": "gpu",
                "billingMode": "spot",
                "envs": [{"key": MARKER_ENV, "value": marker}],
            },
        )
    assert response.status_code == 200, response.text
    return str(response.json()["id"])


def upstream(simulator: SimulatorServer) -> dict[str, dict[str, Any]]:
    """The simulator's instances by id (removed ones included, with `removed`)."""
    return {item["id"]: item for item in simulator.control.instances()}


async def managed_running(steps: Steps, count: int, prefix: str, **columns: Any) -> dict[str, str]:
    """`count` rows (`insert_instance` with `columns`) whose instances were made on the simulator
    and run there, their Novita ids recorded (row id -> Novita id): what the status sync
    watches."""
    rows: dict[str, str] = {}
    for index in range(count):
        row_id = await insert_instance(steps.db, **columns)
        rows[row_id] = create_upstream(steps.simulator, row_id, name=f"{prefix}-{index}")
    wait_for(
        lambda: all(upstream(steps.simulator)[n]["status"] == "running" for n in rows.values()),
        what="the upstream instances running",
    )
    for row_id, novita_id in rows.items():
        async with steps.db.session() as session, session.begin():
            await session.execute(
                update(Instance).where(Instance.id == row_id).values(novita_instance_id=novita_id)
            )
    return rows
