"""Service leases: one replica at a time runs the periodic status sync."""

from __future__ import annotations

import asyncio

from novita_manager.engine.service_lease import (
    acquire_service_lease,
    release_service_lease,
    renew_service_lease,
)
from novita_manager.store.db import Database


async def test_one_holder_at_a_time_and_takeover_after_expiry(db: Database) -> None:
    first = await acquire_service_lease(db, "status_sync", "replica-1", 0.5)
    assert first is not None
    assert await acquire_service_lease(db, "status_sync", "replica-2", 0.5) is None
    assert await acquire_service_lease(db, "other", "replica-2", 0.5) is not None
    assert await renew_service_lease(db, "status_sync", first, 0.5)
    await asyncio.sleep(0.6)
    second = await acquire_service_lease(db, "status_sync", "replica-2", 30)
    assert second is not None
    assert second != first
    assert not await renew_service_lease(db, "status_sync", first, 30)  # lost: cannot extend
    assert not await release_service_lease(db, "status_sync", first)  # nor drop the new one
    assert await acquire_service_lease(db, "status_sync", "replica-1", 30) is None
    assert await release_service_lease(db, "status_sync", second)
    assert await acquire_service_lease(db, "status_sync", "replica-1", 30) is not None


async def test_concurrent_acquires_have_one_winner(db: Database) -> None:
    tokens = await asyncio.gather(
        *(acquire_service_lease(db, "status_sync", f"replica-{i}", 30) for i in range(6))
    )
    assert sum(token is not None for token in tokens) == 1
