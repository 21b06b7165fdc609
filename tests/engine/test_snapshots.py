"""One builder of `decide()`'s input: the columns the status sync selects are enough for it."""

from __future__ import annotations

from dataclasses import fields
from datetime import timedelta

from sqlalchemy import select

from novita_manager.domain.lifecycle import Snapshot
from novita_manager.engine.snapshots import SNAPSHOT_COLUMNS, snapshot_of
from novita_manager.engine.status_sync.record import SYNC_COLUMNS
from novita_manager.store.db import Database
from novita_manager.store.models import Instance
from novita_manager.store.types import utcnow


def busy_row() -> Instance:
    now = utcnow()
    return Instance(
        id="i" * 32,
        name="train",
        status="starting",
        operation="start",
        operation_started_at=now - timedelta(seconds=5),
        operation_issued=True,
        operation_issued_at=now - timedelta(seconds=4),
        create_state="done",
        product_name="RTX 4090 24GB",
        template_id="1",
        gpu_num=1,
        rootfs_size=60,
        region="CN-HK-01",
        billing_mode="spot",
        novita_instance_id="n" * 16,
        observation={"status": "starting"},
        observed_at=now - timedelta(seconds=1),
    )


async def test_a_row_loaded_with_the_snapshot_columns_gives_the_whole_rows_snapshot(
    db: Database,
) -> None:
    row = busy_row()
    expected = snapshot_of(row)
    async with db.session() as session, session.begin():
        session.add(row)
    async with db.read_session() as session:
        only_columns = (await session.execute(select(*SNAPSHOT_COLUMNS))).one()
        synced = (await session.execute(select(*SYNC_COLUMNS))).one()
    # A Row has only the selected columns: reading any other attribute raises AttributeError.
    assert snapshot_of(only_columns) == expected
    assert snapshot_of(synced) == expected
    assert expected.has_upstream
    assert expected.operation_issued


def test_the_sync_selects_every_snapshot_column_once() -> None:
    keys = [column.key for column in SYNC_COLUMNS]
    assert len(keys) == len(set(keys))
    assert {column.key for column in SNAPSHOT_COLUMNS} <= set(keys)
    # Every input of decide() is read from a column (has_upstream from novita_instance_id).
    assert len(fields(Snapshot)) == len(SNAPSHOT_COLUMNS)
