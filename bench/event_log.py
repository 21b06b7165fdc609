"""What the events log's trigger costs concurrent PostgreSQL writers (issue 18).

Usage: python -m bench.event_log [--writers 8] [--transactions 150]

`--writers` tasks each commit `--transactions` small transactions of one status change and one
webhook delivery (the shape of the API's create and of a step reaching a status), on a
throwaway PostgreSQL server; three runs with the event_log triggers, then three after dropping
them. Prints transactions per second of each run.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid

from sqlalchemy import text
from tests.fixtures.postgres import PostgresServer, find_bindir
from tests.webhooks.factories import add_instance

from novita_manager.store.db import Database
from novita_manager.store.models import InstanceEvent, WebhookDelivery
from novita_manager.store.types import utcnow


async def writer(db: Database, instance_id: str, transactions: int) -> None:
    for _ in range(transactions):
        async with db.session() as session, session.begin():
            now = utcnow()
            session.add(
                InstanceEvent(
                    instance_id=instance_id, at=now, from_status="starting", to_status="running"
                )
            )
            session.add(
                WebhookDelivery(
                    id=f"msg_{uuid.uuid4().hex}",
                    instance_id=instance_id,
                    event_type="instance.running",
                    url=None,
                    payload={"type": "instance.running", "data": {}},
                    status="skipped",
                    created_at=now,
                    attempts=0,
                )
            )


async def rate(db: Database, writers: int, transactions: int) -> float:
    ids = [await add_instance(db) for _ in range(writers)]
    started = time.perf_counter()
    await asyncio.gather(*(writer(db, i, transactions) for i in ids))
    return writers * transactions / (time.perf_counter() - started)


async def main(writers: int, transactions: int) -> None:
    bindir = find_bindir()
    if bindir is None:
        raise SystemExit("PostgreSQL not installed")
    server = PostgresServer(bindir).start()
    try:
        db = await Database.open(server.url(await server.create_database()))
        await rate(db, 4, 20)  # warm up
        with_trigger = [await rate(db, writers, transactions) for _ in range(3)]
        async with db.session() as session, session.begin():
            for table in ("instance_events", "webhook_deliveries"):
                await session.execute(text(f"DROP TRIGGER event_log_from_{table} ON {table}"))
        without = [await rate(db, writers, transactions) for _ in range(3)]
        await db.close()
    finally:
        server.stop()
    print(f"{writers} writers x {transactions} transactions, transactions/s per run:")
    print("  with the event_log trigger:", [round(value) for value in with_trigger])
    print("  without it:                ", [round(value) for value in without])


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--writers", type=int, default=8)
    parser.add_argument("--transactions", type=int, default=150)
    args = parser.parse_args()
    asyncio.run(main(args.writers, args.transactions))
