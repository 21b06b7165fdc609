"""Helper process: open a SQLite database and report what happened (used by test_single_process).

Usage: python -m tests.store.open_sqlite <url> [hold-seconds]
"""

from __future__ import annotations

import asyncio
import sys

from novita_manager.logging import configure_logging
from novita_manager.store.db import Database, DatabaseInUse


async def main(url: str, hold: float) -> int:
    configure_logging(level="warning", stream=sys.stderr)
    try:
        db = await Database.open(url)
    except DatabaseInUse as error:
        print(f"REFUSED {error}", flush=True)
        return 3
    print("OPENED", flush=True)
    await asyncio.sleep(hold)
    await db.close()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1], float(sys.argv[2]) if len(sys.argv) > 2 else 0)))
