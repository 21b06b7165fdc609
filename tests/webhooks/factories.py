"""Rows and settings for webhook tests: an instance, a pending delivery, fast settings."""

from __future__ import annotations

import base64
import uuid
from typing import Any

from sqlalchemy import select

from novita_manager.config import Settings, load_settings
from novita_manager.store.db import Database
from novita_manager.store.models import Instance, WebhookAttempt, WebhookDelivery
from novita_manager.store.types import utcnow

SECRET = "whsec_" + base64.b64encode(b"pipeline-test-secret-32-bytes!!").decode()


def fast_settings(database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "novita_api_base_url": "http://127.0.0.1:9/",
        "webhook_secret": SECRET,
        "webhook_allow_private": True,
        "webhook_timeout": 2.0,
        "webhook_retry_base": 0.01,
        "webhook_max_retries": 3,
        "lease_seconds": 5.0,
        "pipeline_workers": 4,
    }
    values.update(overrides)
    return load_settings(**values)


async def add_instance(db: Database, novita_id: str | None = None) -> str:
    instance_id = uuid.uuid4().hex
    async with db.session() as session, session.begin():
        session.add(
            Instance(
                id=instance_id,
                name=f"inst-{instance_id[:6]}",
                status="running",
                product_name="RTX 4090 24GB",
                template_id="1",
                gpu_num=1,
                rootfs_size=60,
                region="CN-HK-01",
                billing_mode="spot",
                novita_instance_id=novita_id,
            )
        )
    return instance_id


async def add_delivery(
    db: Database,
    instance_id: str,
    url: str | None,
    *,
    status: str = "pending",
    event_type: str = "instance.running",
) -> str:
    delivery_id = f"msg_{uuid.uuid4().hex}"
    now = utcnow()
    payload = {
        "type": event_type,
        "timestamp": now.isoformat().replace("+00:00", "Z"),
        "data": {"instanceId": instance_id, "name": "x", "status": "running", "elapsedTime": 1.5},
    }
    async with db.session() as session, session.begin():
        session.add(
            WebhookDelivery(
                id=delivery_id,
                instance_id=instance_id,
                event_type=event_type,
                url=url,
                payload=payload,
                status=status,
                next_attempt_at=now if status == "pending" else None,
                attempts=0,
            )
        )
    return delivery_id


async def load_delivery(db: Database, delivery_id: str) -> WebhookDelivery:
    async with db.session() as session:
        row = await session.get(WebhookDelivery, delivery_id)
        assert row is not None
        return row


async def load_attempts(db: Database, delivery_id: str) -> list[WebhookAttempt]:
    async with db.session() as session:
        query = (
            select(WebhookAttempt)
            .where(WebhookAttempt.delivery_id == delivery_id)
            .order_by(WebhookAttempt.id)
        )
        return list((await session.scalars(query)).all())
