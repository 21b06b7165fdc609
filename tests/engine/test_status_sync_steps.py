"""The status sync's pieces, one at a time, against a real database file and the simulator over
HTTP: what `record` writes and wakes, the fallback GETs, strays adopted or sighted, one run."""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace
from typing import Any

from sqlalchemy import select, update

from novita_manager.engine.status_sync import StatusSync
from novita_manager.engine.status_sync.listing import creates_in_doubt, fetch_missing
from novita_manager.engine.status_sync.record import SYNC_COLUMNS, record
from novita_manager.engine.status_sync.settled import SettledRows, settle_key
from novita_manager.engine.status_sync.strays import settle_strays
from novita_manager.novita.listed import ListedInstance
from novita_manager.store.db import Database
from novita_manager.store.models import Instance
from novita_manager.store.types import utcnow
from tests.engine.steps import Steps, create_upstream, insert_instance, load, upstream


async def sync_rows(db: Database) -> list[Any]:
    async with db.read_session() as session:
        return list((await session.execute(select(*SYNC_COLUMNS).order_by(Instance.id))).all())


async def test_record_writes_changes_wakes_reactions_and_spares_idle_rows(steps: Steps) -> None:
    db = steps.db
    now = utcnow()
    long_ago = now - timedelta(hours=1)
    # Billed since long ago: an observation recorded since costs were kept carries its open
    # period (engine/billing.py), so seeing it running again changes nothing.
    running: dict[str, Any] = {
        "status": "running",
        "portMappings": [],
        "billedSince": long_ago.isoformat(),
        "billedRate": 0.35,
    }
    issued = now - timedelta(seconds=10)
    woken = await insert_instance(
        db, id="a" * 32, status="starting", operation="start", operation_started_at=issued,
        operation_issued=True, operation_issued_at=issued, novita_instance_id="na",
        observation={"status": "starting", "portMappings": []}, next_attempt_at=None,
    )  # fmt: skip
    pulled = await insert_instance(
        db, id="b" * 32, status="creating", operation="create", operation_started_at=issued,
        novita_instance_id="nb", observation={"status": "creating", "portMappings": []},
        next_attempt_at=None,
    )  # fmt: skip
    fresh = await insert_instance(
        db, id="c" * 32, status="running", operation=None, novita_instance_id="nc",
        observation=running, last_synced_at=now, next_attempt_at=None,
    )  # fmt: skip
    stale = await insert_instance(
        db, id="d" * 32, status="running", operation=None, novita_instance_id="nd",
        observation=running, last_synced_at=long_ago, next_attempt_at=None,
    )  # fmt: skip
    found = {
        "na": {"status": "running", "portMappings": []},
        "nb": {"status": "pulling", "portMappings": []},
        "nc": running,
        "nd": running,
    }
    started = utcnow()
    changed, any_woken = await record(
        db,
        await sync_rows(db),
        found,
        started,
        startup_timeout=600,
        resync_write_interval=60,
    )
    assert (changed, any_woken) == (2, True)
    a, b, c, d = [await load(db, i) for i in (woken, pulled, fresh, stale)]
    assert (a.novita_status, a.observed_at, a.last_synced_at) == ("running", started, started)
    assert a.next_attempt_at is not None
    assert a.next_attempt_at <= utcnow()  # running: the provisioning step will act at once
    assert (b.novita_status, b.next_attempt_at) == ("pulling", None)  # nothing to do yet
    assert (c.last_synced_at, c.observed_at) == (now, None)  # untouched
    assert (d.last_synced_at, d.observed_at, d.next_attempt_at) == (started, started, None)


async def test_fallback_gets_read_an_instance_or_find_it_gone(steps: Steps) -> None:
    novita_id = create_upstream(steps.simulator, "someone")
    found = await fetch_missing(steps.ctx.client, [novita_id, "0" * 16])
    assert found[novita_id]["status"]
    assert not found[novita_id].get("gone")
    assert found["0" * 16]["gone"] is True


async def test_a_recent_create_with_an_unknown_outcome_is_in_doubt(steps: Steps) -> None:
    assert not await creates_in_doubt(steps.db)
    await insert_instance(steps.db, create_state="done", novita_instance_id="n1")
    assert not await creates_in_doubt(steps.db)
    await insert_instance(steps.db, create_state="unknown")
    assert await creates_in_doubt(steps.db)


async def test_strays_are_adopted_by_a_creating_row_and_sighted_otherwise(steps: Steps) -> None:
    creating = await insert_instance(steps.db, create_state="unknown")
    failed = await insert_instance(steps.db, status="failed", operation=None)
    listing = await steps.ctx.client.list_all_instances()
    assert listing.instances == []
    adopted_id = create_upstream(steps.simulator, creating)
    late_id = create_upstream(steps.simulator, failed)
    foreign_id = create_upstream(steps.simulator, "someone-else")
    items = {item.id: item for item in (await steps.ctx.client.list_all_instances()).instances}
    started = utcnow()
    adopted, sightings = await settle_strays(
        steps.db,
        {
            adopted_id: (creating, items[adopted_id]),
            late_id: (failed, items[late_id]),
            foreign_id: ("someone-else", items[foreign_id]),
        },
        started,
    )
    assert adopted == 1
    assert [(s.novita_instance_id, s.marker) for s in sightings] == [(late_id, failed)]
    row = await load(steps.db, creating)
    assert (row.novita_instance_id, row.create_state, row.observed_at) == (
        adopted_id,
        "done",
        started,
    )
    assert row.next_attempt_at is not None
    assert (await load(steps.db, failed)).novita_instance_id is None
    assert not any(item["removed"] for item in upstream(steps.simulator).values())


async def test_one_run_records_managed_rows_and_sights_strays(steps: Steps) -> None:
    managed = await insert_instance(steps.db, status="starting", create_state="done")
    novita_id = create_upstream(steps.simulator, managed)
    await insert_instance(steps.db, id=managed[::-1], novita_instance_id=None)
    failed = await insert_instance(steps.db, status="failed", operation=None)
    late_id = create_upstream(steps.simulator, failed)
    async with steps.db.session() as session, session.begin():
        await session.execute(
            update(Instance).where(Instance.id == managed).values(novita_instance_id=novita_id)
        )
    asked: list[int] = []
    sync = StatusSync(
        db=steps.db,
        client=steps.ctx.client,
        interval=0.2,
        owner="test",
        on_strays=lambda: asked.append(1),
    )
    report = await sync.run_once()
    assert (report.rows, report.pages, report.strays, report.complete) == (1, 1, 1, True)
    row = await load(steps.db, managed)
    assert row.observed_at is not None
    assert row.observation is not None
    assert row.novita_status == row.observation["status"]  # what the listing said
    assert [s.novita_instance_id for s in sync.sightings.take()] == [late_id]
    assert asked == [1]
    assert sync.health.runs == 1


def test_the_settle_key_changes_with_any_write_to_the_row() -> None:
    """A row is skipped only while nothing wrote to it: an observation write moves
    `observed_at`, a step's write `updated_at` (whatever column it changed)."""
    now = utcnow()
    row = SimpleNamespace(
        id="r1", observed_at=now, updated_at=now, status="running", operation=None,
        operation_issued=False, operation_started_at=None, operation_issued_at=None,
        cluster_id="c1", last_synced_at=now,
    )  # fmt: skip
    item = ListedInstance(id="n1", status="running", marker=None, cluster_id="c1")
    key = settle_key(row, item)
    assert key is not None
    assert settle_key(SimpleNamespace(**{**vars(row)}), item) == key
    later = now + timedelta(seconds=1)
    for column in ("observed_at", "updated_at"):
        assert settle_key(SimpleNamespace(**{**vars(row), column: later}), item) != key
    # Another row seen exactly alike has another key: the settled rows are kept as keys alone.
    assert settle_key(SimpleNamespace(**{**vars(row), "id": "r2"}), item) != key
    erring = ListedInstance(id="n1", status="running", marker=None, status_error={"state": "x"})
    assert settle_key(row, erring) is None  # a statusError is always evaluated: time matters


def test_settled_rows_hold_exactly_their_keys() -> None:
    """The settled rows' keys between two runs: 64-bit hashes, negative ones included."""
    keys = [hash(("row", n)) for n in range(1_000)] + [-(2**63), 2**63 - 1, 0]
    settled = SettledRows(keys)
    assert len(settled) == len(keys)
    assert all(key in settled for key in keys)
    assert not any(hash(("other", n)) in settled for n in range(1_000))
    assert "row" not in settled
    assert 1 not in SettledRows()
