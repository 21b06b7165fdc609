"""The fast read path returns exactly what the ORM path returns, on many varied rows.

`InstanceReads` (one SELECT, no ORM; raw sqlite3 on SQLite) feeds `render_instance`, which the
endpoints serialise with orjson; the reference is the ORM row validated into `InstanceView`.
Both dialects, 300 rows drawn with a fixed seed to cover every nullable column, unicode names,
port and connection shapes, and the list's filters, order and paging.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from sqlalchemy import select

from novita_manager.domain.statuses import Status
from novita_manager.store.db import Database
from novita_manager.store.instance_reads import InstanceReads
from novita_manager.store.models import Instance
from novita_manager.store.views import instance_view, keep_timestamp, render_instance

ROWS = 300
NAMES = ["train", "Train_%", "a_b", "a-b", "日本語", "x\\y", "eval-100", "big"]


def _maybe(rng: random.Random, value: Any) -> Any:
    return value if rng.random() < 0.6 else None


def random_row(rng: random.Random, index: int, base: datetime) -> Instance:
    whole = rng.random() < 0.3  # microseconds 0: ISO-8601 leaves them out
    created = base + timedelta(
        seconds=rng.randint(0, 10_000), microseconds=0 if whole else rng.randint(1, 999_999)
    )
    ports = [
        {
            "port": rng.choice([22, 8888, 7860]),
            "endpoint": _maybe(rng, "1.2.3.4:100"),
            "type": _maybe(rng, "tcp"),
        }
        for _ in range(rng.randint(0, 3))
    ]
    connection = {
        key: value
        for key, value in (
            ("ssh", _maybe(rng, "ssh root@h -p 1")),
            ("jupyter", _maybe(rng, "https://j")),
            ("webTerminal", _maybe(rng, "https://t")),
        )
        if value
    }
    return Instance(
        id=f"{index:032x}",
        name=f"{rng.choice(NAMES)}-{index % 7}",
        status=rng.choice(list(Status)).value,
        novita_status=_maybe(rng, rng.choice(["running", "exited", "pulling"])),
        novita_instance_id=_maybe(rng, f"n{index:015x}"),
        product_id=_maybe(rng, "4090.hk"),
        product_name="RTX 4090 24GB",
        template_id=str(rng.randint(1, 99)),
        gpu_num=rng.randint(1, 8),
        rootfs_size=rng.randint(10, 500),
        region="CN-HK-01",
        cluster_id=_maybe(rng, "cn-hongkong-1"),
        observation=rng.choice([None, {}, {"clusterId": "from-observation", "status": "x"}]),
        billing_mode=rng.choice(["spot", "onDemand"]),
        price_per_hour=_maybe(rng, round(rng.uniform(0.01, 30), 6)),
        port_mappings=ports,
        connection_details=connection,
        failure_reason=_maybe(rng, "boom"),
        last_error=_maybe(rng, "transient"),
        created_at=created,
        updated_at=created,
        started_at=_maybe(rng, created + timedelta(seconds=1)),
        ready_at=_maybe(rng, created + timedelta(seconds=2)),
        failed_at=_maybe(rng, created + timedelta(seconds=3)),
        stopped_at=_maybe(rng, created + timedelta(seconds=4)),
        deleted_at=_maybe(rng, created + timedelta(seconds=5)),
        last_synced_at=_maybe(rng, created + timedelta(seconds=6)),
    )


@pytest.fixture
async def rows(db: Database) -> list[Instance]:
    rng = random.Random(15)
    base = datetime(2026, 1, 1, tzinfo=UTC)
    made = [random_row(rng, index, base) for index in range(ROWS)]
    made[1].created_at = made[0].created_at  # a tie: the order falls back to the id
    async with db.session() as session, session.begin():
        session.add_all(made)
    return made


def reference(row: Instance, stale: bool = False) -> dict[str, Any]:
    return instance_view(row, stale=stale).model_dump(mode="json")


def fast(columns: dict[str, Any], stale: bool = False) -> dict[str, Any]:
    view = render_instance(columns, stale=stale, timestamp=keep_timestamp)
    parsed: dict[str, Any] = orjson.loads(orjson.dumps(view, option=orjson.OPT_UTC_Z))
    return parsed


async def orm_rows(db: Database) -> dict[str, Instance]:
    async with db.read_session() as session:
        return {row.id: row for row in (await session.scalars(select(Instance))).all()}


async def test_one_instance_equals_the_orm_view(db: Database, rows: list[Instance]) -> None:
    reads = await InstanceReads.open(db)
    try:
        stored = await orm_rows(db)
        for row in rows:
            by_id = await reads.by_key(row.id)
            assert by_id is not None
            assert fast(by_id) == reference(stored[row.id])
            assert fast(by_id, stale=True) == reference(stored[row.id], stale=True)
            if row.novita_instance_id:
                by_novita = await reads.by_key(row.novita_instance_id)
                assert by_novita is not None
                assert by_novita["id"] == row.id
        assert await reads.by_key("no-such-instance") is None
    finally:
        await reads.close()


@pytest.mark.parametrize(
    ("status", "name", "limit", "offset"),
    [
        (None, None, 50, 0),
        (None, None, 500, 0),
        (None, None, 37, 100),
        (Status.RUNNING, None, 100, 0),
        (Status.DELETED, None, 100, 0),
        (None, "train", 100, 0),
        (None, "_%", 100, 0),  # LIKE wildcards are matched literally
        (None, "x\\y", 100, 0),
        (None, "日本", 100, 0),
        (Status.FAILED, "a", 10, 5),
        (None, None, 10, 10_000),
    ],
)
async def test_a_page_equals_the_orm_page(
    db: Database,
    rows: list[Instance],
    status: Status | None,
    name: str | None,
    limit: int,
    offset: int,
) -> None:
    reads = await InstanceReads.open(db)
    try:
        total, page = await reads.page(status, name, limit, offset)
    finally:
        await reads.close()
    stored = await orm_rows(db)
    expected = sorted(
        (
            row
            for row in stored.values()
            if (row.status == status.value if status else row.status != Status.DELETED.value)
            and (name is None or name.lower() in row.name.lower())
        ),
        key=lambda row: (row.created_at, row.id),
        reverse=True,
    )
    assert total == len(expected)
    assert [fast(columns) for columns in page] == [
        reference(row) for row in expected[offset : offset + limit]
    ]
    if status is None and name is None and offset == 0:
        assert total > 0
        assert page
