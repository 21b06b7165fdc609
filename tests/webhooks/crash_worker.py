"""The webhook pipeline in its own process, for the crash test (argument: the database URL).

Runs the real delivery pipeline (fast settings, 1 s leases, private targets allowed) until killed.
"""

from __future__ import annotations

import asyncio
import sys

from novita_manager.engine.webhook_delivery import build_webhook_pipeline
from novita_manager.logging import configure_logging
from novita_manager.metrics import Metrics
from novita_manager.store.db import Database
from tests.webhooks.factories import fast_settings


async def main(url: str) -> None:
    configure_logging(level="warning", stream=sys.stderr)
    settings = fast_settings(url, lease_seconds=1.0)
    db = await Database.open(url, owner="crash-worker")
    pipeline = build_webhook_pipeline(db, settings, Metrics(), "crash-worker")
    await pipeline.start()
    print("READY", flush=True)
    await asyncio.Event().wait()  # until SIGKILL


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
