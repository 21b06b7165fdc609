"""Issue 20 end to end: a hanging and a dropping receiver do not delay a healthy one.

Three raw socket servers on 127.0.0.1 (so three destinations): one accepts and never answers,
one closes every connection after reading the request, one answers 200 at once. The delivery
pipeline runs for real (fetcher, workers, leases) over SQLite.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from novita_manager.engine.webhook_delivery import build_webhook_pipeline, webhook_sender_of
from novita_manager.metrics import Metrics
from novita_manager.store.db import Database
from novita_manager.store.models import WebhookAttempt, WebhookDelivery
from tests.fixtures.mode_receiver import Receiver
from tests.webhooks.factories import add_delivery, add_instance, fast_settings

BAD = 50


@pytest.fixture
async def sqlite_db(tmp_path: Path) -> AsyncIterator[tuple[Database, str]]:
    url = f"sqlite+aiosqlite:///{tmp_path}/isolation.db"
    database = await Database.open(url)
    try:
        yield database, url
    finally:
        await database.close()


async def _pending_to(db: Database, url: str, count: int) -> list[str]:
    ids = []
    for _ in range(count):
        ids.append(await add_delivery(db, await add_instance(db), url))
    return ids


async def test_bad_receivers_do_not_delay_a_healthy_one(
    sqlite_db: tuple[Database, str],
) -> None:
    db, database_url = sqlite_db
    hang, drop, good = Receiver("hang"), Receiver("drop"), Receiver("ok")
    for receiver in (hang, drop, good):
        await receiver.start()
    settings = fast_settings(
        database_url,
        webhook_timeout=1.0,
        webhook_retry_base=0.2,
        webhook_max_retries=20,
        webhook_max_in_flight=64,
        webhook_max_in_flight_per_host=4,
        webhook_breaker_threshold=3,
        webhook_breaker_cooldown=0.5,
        lease_seconds=5.0,
    )
    metrics = Metrics()
    pipeline = build_webhook_pipeline(db, settings, metrics, "isolation")
    bad_ids = await _pending_to(db, hang.url(), BAD) + await _pending_to(db, drop.url(), BAD)
    await pipeline.start()
    try:
        await asyncio.sleep(0.5)  # let the bad receivers fill their slots and open breakers
        # Healthy events arrive while the bad ones are pending: each within 2 s.
        good_ids: dict[str, float] = {}
        for _ in range(12):
            instance = await add_instance(db)
            delivery_id = await add_delivery(db, instance, good.url())
            good_ids[delivery_id] = time.monotonic()
            pipeline.hint()
            await asyncio.sleep(0.25)
        deadline = time.monotonic() + 5
        while len(good.answered) < len(good_ids) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        first_seen: dict[str, float] = {}
        for webhook_id, at in good.seen:
            first_seen.setdefault(webhook_id, at)
        lags = sorted(first_seen[i] - committed for i, committed in good_ids.items())
        assert set(first_seen) == set(good_ids)
        assert lags[-1] < 2.0, lags
        # The bad receivers were tried meanwhile (and isolated, not starved of attempts).
        assert hang.seen
        assert drop.seen
        assert len({i for i, _ in hang.seen}) <= 4 + 4  # its share, plus a probe or so
        # They recover: every pending delivery is delivered, each answered 200 exactly once.
        hang.mode = drop.mode = "ok"
        deadline = time.monotonic() + 12
        while time.monotonic() < deadline:
            async with db.session() as session:
                pending = await session.scalar(
                    select(func.count()).where(WebhookDelivery.status != "delivered")
                )
            if not pending:
                break
            await asyncio.sleep(0.1)
        assert pending == 0
    finally:
        await pipeline.stop(drain_timeout=2)
        await webhook_sender_of(pipeline).aclose()
        for receiver in (hang, drop, good):
            await receiver.close()

    answered = hang.answered + drop.answered + good.answered
    assert set(answered) == set(bad_ids) | set(good_ids)
    assert all(count == 1 for count in answered.values()), answered.most_common(3)
    # Every request carried a known webhook-id; repeats are retries of the same id, recorded.
    requests = Counter(i for r in (hang, drop, good) for i, _ in r.seen)
    assert set(requests) == set(answered)
    async with db.session() as session:
        attempts = Counter((await session.scalars(select(WebhookAttempt.delivery_id))).all())
    for webhook_id, count in requests.items():
        # The last hanging request may be read after its attempt was cut off and recorded.
        assert attempts[webhook_id] >= count - 1, webhook_id
    lag = metrics.webhook_lag.labels("delivered")._sum.get()  # type: ignore[attr-defined]
    assert lag > 0
