"""WAL checkpoints run on a thread of their own (store/wal_checkpoint.py), not in a commit on the
event loop: the service's writing connections have automatic checkpoints off, the thread copies
what was committed into the database file, and the WAL is started over instead of growing."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text

from novita_manager.store.db import Database
from tests.fixtures.waiting import wait_until

PAGE = 4096


async def write_pages(db: Database, pages: int) -> None:
    """About `pages` pages of new rows, 100 rows per transaction."""
    for _ in range(pages // 100):
        async with db.session() as session, session.begin():
            for _ in range(100):
                await session.execute(text("INSERT INTO probe (blob) VALUES (zeroblob(3500))"))


def wal_pages(path: Path) -> float:
    """The WAL file's size in pages: a checkpoint followed by a commit starts it over from its
    beginning (it is reused, not truncated), so past 1,000 pages it grows only without one."""
    return (path.parent / f"{path.name}-wal").stat().st_size / PAGE


async def test_commits_leave_checkpoints_to_the_thread(tmp_path: Path) -> None:
    path = tmp_path / "x.db"
    db = await Database.open(f"sqlite+aiosqlite:///{path}")
    try:
        async with db.session() as session, session.begin():
            assert (await session.execute(text("PRAGMA wal_autocheckpoint"))).scalar() == 0
            await session.execute(text("CREATE TABLE probe (id INTEGER PRIMARY KEY, blob BLOB)"))
        checkpointer = db._checkpointer
        assert checkpointer is not None
        await write_pages(db, 1500)  # more than SQLite's automatic 1,000 pages

        async def caught_up() -> bool:
            return checkpointer.frames >= 1500

        await wait_until(caught_up, timeout=20, what="the thread to checkpoint the commits")
        # The WAL is started over rather than grown: another 1,500 pages, in parts of 300 the
        # thread catches up with (on a loaded machine it may fall behind a faster writer), fit
        # in about the space of the first ones.
        size = wal_pages(path)
        for written in range(1800, 3001, 300):
            await write_pages(db, 300)

            async def caught_up_again(written: int = written) -> bool:
                return checkpointer.frames >= written

            await wait_until(caught_up_again, timeout=20, what="the second checkpoints")
        assert wal_pages(path) < size + 1000  # without a restart: about size + 1,500
    finally:
        await db.close()
    assert not checkpointer._thread.is_alive()  # close() stopped it


async def test_without_the_thread_commits_do_not_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "x.db"
    db = await Database.open(f"sqlite+aiosqlite:///{path}")
    assert db._checkpointer is not None
    db._checkpointer.stop()  # only the commits now
    try:
        async with db.session() as session, session.begin():
            await session.execute(text("CREATE TABLE probe (id INTEGER PRIMARY KEY, blob BLOB)"))
        await write_pages(db, 1500)
        # No commit checkpointed and started the WAL over (automatic checkpoints would have,
        # at 1,000 pages): every page written is still in it.
        assert wal_pages(path) >= 1500
    finally:
        await db.close()
