"""The fast read path returns exactly what the ORM path returns, on many varied rows.

`InstanceReads` (one SELECT, no ORM; raw sqlite3 on SQLite) and its `render`, which the
endpoints serialise with orjson; the reference is the ORM row validated into `InstanceView`,
serialised the same way: the JSON must be the same bytes (fields, order, number types, the
timestamps' text). Both dialects, 300 rows drawn with a fixed seed to cover every nullable
column, unicode names, port and connection shapes, spot fields, open and closed billing
periods, limits (`expiresAt`), `stale` on either side of its limit, and the list's filters,
order and paging.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from sqlalchemy import select

from novita_manager.domain.statuses import Operation, Status
from novita_manager.store.db import Database
from novita_manager.store.instance_reads import InstanceReads, Row
from novita_manager.store.models import Instance
from novita_manager.store.views import instance_view

ROWS = 300
NAMES = ["train", "Train_%", "a_b", "a-b", "日本語", "x\\y", "eval-100", "big"]
BASE = datetime(2026, 1, 1, tzinfo=UTC)
NOW = BASE + timedelta(seconds=20_000, microseconds=123_456)  # cost to date runs to it
STALE_BEFORE = BASE + timedelta(seconds=5_000)  # rows confirmed before it are stale


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
    limited = rng.random() < 0.3
    billing_since = _maybe(rng, created + timedelta(seconds=rng.uniform(0, 9_000)))
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
        port_mappings=rng.choice([ports, ports, None]),
        connection_details=rng.choice([connection, connection, None]),
        failure_reason=rng.choice(["boom", "", None, None]),
        last_error=_maybe(rng, "transient"),
        created_at=created,
        updated_at=created,
        started_at=_maybe(rng, created + timedelta(seconds=1)),
        ready_at=_maybe(rng, created + timedelta(seconds=2)),
        failed_at=_maybe(rng, created + timedelta(seconds=3)),
        stopped_at=_maybe(rng, created + timedelta(seconds=4)),
        deleted_at=_maybe(rng, created + timedelta(seconds=5)),
        last_synced_at=_maybe(rng, created + timedelta(seconds=6)),
        # Spot life.
        cluster_name=_maybe(rng, "CN-HK-01"),
        spot_status=_maybe(rng, rng.choice(["running", "notified"])),
        reclaim_at=_maybe(rng, created + timedelta(seconds=7, microseconds=5)),
        recoveries=rng.randint(0, 3),
        # Costs and limits.
        operation=_maybe(rng, rng.choice(list(Operation)).value),
        billing_since=billing_since,
        billing_rate=_maybe(rng, round(rng.uniform(0.1, 3), 4)) if billing_since else None,
        billed_seconds=rng.choice([0.0, rng.uniform(0, 50_000)]),
        billed_cost=rng.choice([0.0, rng.uniform(0, 40)]),
        auto_stop_after=_maybe(rng, rng.uniform(60, 9_000)) if limited else None,
        auto_delete_after=_maybe(rng, rng.uniform(60, 90_000)) if limited else None,
        idle_stop_after=_maybe(rng, 600.0) if limited else None,
        max_cost=_maybe(rng, rng.uniform(0.5, 50)) if limited else None,
        idle_since=_maybe(rng, created + timedelta(seconds=3)) if limited else None,
        limit_fired=_maybe(rng, "auto-stop:x") if limited else None,
    )


@pytest.fixture
async def rows(db: Database) -> list[Instance]:
    rng = random.Random(15)
    made = [random_row(rng, index, BASE) for index in range(ROWS)]
    made[1].created_at = made[0].created_at  # a tie: the order falls back to the id
    async with db.session() as session, session.begin():
        session.add_all(made)
    return made


def stale_rule(columns: Mapping[str, Any]) -> bool:
    """A `Runtime.staleness` of the same shape: it reads the same columns, as given."""
    if columns["novita_instance_id"] is None or columns["status"] == Status.DELETED.value:
        return False
    confirmed = columns["last_synced_at"] or columns["created_at"]
    if isinstance(confirmed, str):
        confirmed = datetime.fromisoformat(confirmed)
    return bool(confirmed < STALE_BEFORE)


def reference(row: Instance, stale: bool | None = None) -> bytes:
    """The ORM row's typed view, as JSON bytes."""
    if stale is None:
        stale = stale_rule({name: getattr(row, name) for name in STALE_COLUMNS})
    view = instance_view(row, stale=stale, now=NOW).model_dump(mode="json")
    return orjson.dumps(view)


STALE_COLUMNS = ("novita_instance_id", "status", "last_synced_at", "created_at")


def fast(reads: InstanceReads, row: Row, stale: bool | None = None) -> bytes:
    """The read path's view of the same row, as the endpoints serialise it."""
    rule = stale_rule if stale is None else (lambda _columns: stale)
    return orjson.dumps(reads.render(row, rule, NOW), option=orjson.OPT_UTC_Z)


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
            assert fast(reads, by_id) == reference(stored[row.id])
            assert fast(reads, by_id, stale=True) == reference(stored[row.id], stale=True)
            if row.novita_instance_id:
                by_novita = await reads.by_key(row.novita_instance_id)
                assert by_novita is not None
                assert by_novita[0] == row.id
        assert await reads.by_key("no-such-instance") is None
        # The rows cover what the renderer decides: the draw above is not vacuous.
        _total, page = await reads.page(None, None, 500, 0)
        views = [orjson.loads(fast(reads, row)) for row in page]
        assert {view["stale"] for view in views} == {True, False}
        assert any(view["expiresAt"] for view in views)
        assert any(view["lastError"] == "transient" for view in views)
        assert any(view["costToDate"] != round(view["costToDate"], 2) for view in views)
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
    assert [fast(reads, row) for row in page] == [
        reference(row) for row in expected[offset : offset + limit]
    ]
    if status is None and name is None and offset == 0:
        assert total > 0
        assert page
