"""An engine in its own process, for the crash tests: python -m tests.engine.engine_proc URL OWNER.

Runs a pipeline over `engine_test_items` with the counting handler and prints `DONE <id>` after
each committed step (or `LOST <id>`), so the test can SIGKILL it mid-work.
Options: --workers N, --lease S, --delay S.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from novita_manager.engine.pipeline import Pipeline
from novita_manager.logging import configure_logging
from novita_manager.store.db import Database
from tests.engine.items import Item, counting_handler


def report(row_id: str, held: bool) -> None:
    print(f"{'DONE' if held else 'LOST'} {row_id}", flush=True)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("owner")
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--lease", type=float, default=2.0)
    parser.add_argument("--delay", type=float, default=0.05)
    args = parser.parse_args()
    configure_logging(level="warning", stream=sys.stderr)
    db = await Database.open(args.url, owner=args.owner)
    pipeline = Pipeline(
        name="crash-test",
        db=db,
        model=Item,
        handler=counting_handler(db, args.owner, args.delay, report),
        workers=args.workers,
        lease_seconds=args.lease,
        idle_min=0.02,
        idle_max=0.2,
    )
    await pipeline.start()
    print("READY", flush=True)
    await asyncio.Event().wait()  # until killed


if __name__ == "__main__":
    asyncio.run(main())
