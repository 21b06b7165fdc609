"""SIGKILL between sending and recording: after a restart the event is delivered again, same id."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from standardwebhooks import Webhook

from novita_manager.engine.webhook_delivery import build_webhook_pipeline, webhook_sender_of
from novita_manager.metrics import Metrics
from novita_manager.store.db import Database
from tests.fixtures.webhook_receiver import Reply, WebhookReceiver
from tests.webhooks.factories import (
    SECRET,
    add_delivery,
    add_instance,
    fast_settings,
    load_attempts,
    load_delivery,
)

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
async def test_killed_after_sending_redelivers_with_the_same_webhook_id(
    database_url: str, webhook_receiver: WebhookReceiver
) -> None:
    db = await Database.open(database_url)
    delivery_id = await add_delivery(db, await add_instance(db), webhook_receiver.url)
    await db.close()  # SQLite allows one process: hand the file to the worker

    release = threading.Event()
    webhook_receiver.script(Reply(stall=release))  # got the request, answers only after the kill
    worker = subprocess.Popen(
        [sys.executable, "-m", "tests.webhooks.crash_worker", database_url],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        await webhook_receiver.until(1, timeout=20)
    finally:
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(timeout=10)
        release.set()
    assert worker.returncode == -signal.SIGKILL

    db = await Database.open(database_url)
    try:
        row = await load_delivery(db, delivery_id)
        assert row.status == "pending"  # nothing was recorded
        assert await load_attempts(db, delivery_id) == []

        settings = fast_settings(database_url, lease_seconds=1.0)
        pipeline = build_webhook_pipeline(db, settings, Metrics(), "restarted")
        deadline = time.monotonic() + 15
        while row.status == "pending" and time.monotonic() < deadline:
            await pipeline.run_once()  # claims the row once the dead worker's lease expired
            row = await load_delivery(db, delivery_id)
            await asyncio.sleep(0.05)
        await webhook_sender_of(pipeline).aclose()

        assert row.status == "delivered"
        first, second = webhook_receiver.requests()
        assert first.headers["webhook-id"] == second.headers["webhook-id"] == delivery_id
        assert first.body == second.body
        Webhook(SECRET).verify(second.body, second.headers)
        assert [a.status_code for a in await load_attempts(db, delivery_id)] == [200]
    finally:
        await db.close()
