"""Housekeeping: idempotency keys are kept 24 h, then purged."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from novita_manager.engine.housekeeping import purge_expired_idempotency_keys
from novita_manager.store.db import Database
from novita_manager.store.models import IdempotencyKey
from novita_manager.store.types import utcnow


async def test_idempotency_keys_older_than_a_day_are_purged(db: Database) -> None:
    async with db.session() as session, session.begin():
        for key, age in (("old", timedelta(hours=25)), ("young", timedelta(hours=23))):
            session.add(
                IdempotencyKey(
                    key=key,
                    request_hash="h",
                    instance_id="i",
                    response_status=201,
                    response_body={},
                    created_at=utcnow() - age,
                )
            )
    assert await purge_expired_idempotency_keys(db) == 1
    async with db.read_session() as reader:
        assert (await reader.scalars(select(IdempotencyKey.key))).all() == ["young"]
