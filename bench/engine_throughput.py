"""Engine throughput: rows claimed and processed per second on SQLite and on PostgreSQL.

Usage: python -m bench.engine_throughput [--rows 5000] [--workers 8] [--postgres-url URL]
       [--write-docs]
Each row's handler is trivial (one UPDATE under the lease that releases it), so this measures
the engine's own cost per row: claim, hand-off, the handler's write and the lease bookkeeping.
Without --postgres-url a throwaway server is started from Debian's binaries (fsync off, as in
the tests). --write-docs replaces this benchmark's section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import platform
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Integer, MetaData, String, func, select
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from bench.common import write_section
from novita_manager.engine.leases import Lease, write_with_lease
from novita_manager.engine.pipeline import Pipeline
from novita_manager.logging import configure_logging
from novita_manager.store.db import Database
from novita_manager.store.models import LeasedMixin
from novita_manager.store.types import utcnow

DOCS = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"
START, END = "<!-- engine-throughput:start -->", "<!-- engine-throughput:end -->"


class BenchBase(DeclarativeBase):
    metadata = MetaData()


class BenchRow(LeasedMixin, BenchBase):
    __tablename__ = "bench_engine_rows"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    done: Mapped[int] = mapped_column(Integer, default=0)


@dataclass
class Result:
    dialect: str
    rows: int
    workers: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.rows / self.seconds


async def measure(url: str, rows: int, workers: int) -> Result:
    db = await Database.open(url)
    try:
        async with db.engine.begin() as conn:
            await conn.run_sync(BenchBase.metadata.drop_all)
            await conn.run_sync(BenchBase.metadata.create_all)
        now = utcnow()
        async with db.session() as session, session.begin():
            session.add_all(
                BenchRow(id=f"r{i:06d}", next_attempt_at=now, attempts=0) for i in range(rows)
            )
        finished = asyncio.Event()
        count = 0

        async def handler(lease: Lease, row: BenchRow) -> None:
            nonlocal count
            async with db.session() as session, session.begin():
                values = {"done": BenchRow.done + 1, "next_attempt_at": None}
                if not await write_with_lease(session, BenchRow, lease, values, release=True):
                    await session.rollback()
                    return
            count += 1
            if count == rows:
                finished.set()

        pipeline = Pipeline(
            name="bench", db=db, model=BenchRow, handler=handler, workers=workers,
            lease_seconds=30, idle_min=0.01, idle_max=0.1,
        )  # fmt: skip
        started = time.perf_counter()
        await pipeline.start()
        await asyncio.wait_for(finished.wait(), 600)
        seconds = time.perf_counter() - started
        await pipeline.stop()
        async with db.session() as session:
            total = await session.scalar(select(func.sum(BenchRow.done)))
            worst = await session.scalar(select(func.max(BenchRow.done)))
        assert (total, worst) == (rows, 1), f"not exactly once: sum {total}, max {worst}"
        return Result(db.dialect, rows, workers, seconds)
    finally:
        await db.close()


def write_docs(results: list[Result], command: str) -> None:
    table = "\n".join(
        f"| {r.dialect} | {r.rows} | {r.workers} | {r.seconds:.2f} | {r.rate:,.0f} |"
        for r in results
    )
    section = f"""{START}
## Engine throughput (rows claimed and processed per second)

Command (from the repository root, in the venv): `{command}`
Machine: 2 cores, 24 GiB RAM ({platform.machine()}, Python {platform.python_version()},
{platform.system()}), shared with other work while measuring, so runs vary by about ±20 %;
date: {datetime.date.today().isoformat()}.
Each row: claimed by the fetcher (PostgreSQL `FOR UPDATE SKIP LOCKED`; SQLite under the
process-local lock), handed to one of the workers, written back by a trivial handler with one
`UPDATE ... WHERE lock_token` that releases the lease (the pipeline then skips its own release).
The handler does no I/O, so this is the engine's own ceiling: real steps wait on Novita for
far longer, and their throughput is bounded by upstream calls and `PIPELINE_WORKERS`.
SQLite: a file in WAL mode, `synchronous=NORMAL`. PostgreSQL: a local throwaway server started
by the benchmark (fsync off, as in the tests), same machine, over TCP on 127.0.0.1.
Every run checks that each row was processed exactly once.

| database | rows | workers | seconds | rows/s |
|---|---|---|---|---|
{table}
{END}"""
    write_section("engine-throughput", section.removeprefix(START).removesuffix(END))


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--postgres-url")
    parser.add_argument("--skip-postgres", action="store_true")
    parser.add_argument("--write-docs", action="store_true")
    args = parser.parse_args()
    configure_logging(level="warning", stream=sys.stderr)
    results = []
    folder = tempfile.mkdtemp(prefix="nm-bench-")
    try:
        url = f"sqlite+aiosqlite:///{folder}/bench.db"
        results.append(await measure(url, args.rows, args.workers))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    if args.postgres_url:
        results.append(await measure(args.postgres_url, args.rows, args.workers))
    elif not args.skip_postgres:
        from tests.fixtures.postgres import PostgresServer, find_bindir

        bindir = find_bindir()
        if bindir is None:
            print("PostgreSQL not installed: apt-get install postgresql", file=sys.stderr)
        else:
            server = PostgresServer(bindir).start()
            try:
                name = await server.create_database()
                results.append(await measure(server.url(name), args.rows, args.workers))
            finally:
                server.stop()
    for r in results:
        print(f"{r.dialect:10s} {r.rows} rows, {r.workers} workers: {r.seconds:.2f} s, "
              f"{r.rate:,.0f} rows/s")  # fmt: skip
    if args.write_docs:
        shown = [a for a in sys.argv[1:] if not a.startswith("--postgres-url")]
        write_docs(results, " ".join(["python -m bench.engine_throughput", *shown]))
        print(f"wrote {DOCS.relative_to(Path.cwd()) if DOCS.is_relative_to(Path.cwd()) else DOCS}")
    sys.stdout.flush()


if __name__ == "__main__":
    asyncio.run(main())
