"""Writing what the listing said: changed rows in full, the rest only as seen again, and the rows
whose next provisioning step would act made due at once."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, select, update

from novita_manager.domain import observations
from novita_manager.domain.lifecycle import Action, decide, fresh_observation
from novita_manager.engine import billing
from novita_manager.engine.changes import observed
from novita_manager.engine.snapshots import SNAPSHOT_COLUMNS, snapshot_of
from novita_manager.store.db import Database
from novita_manager.store.models import Instance
from novita_manager.store.types import utcnow

# The columns the sync reads of each managed row: what `record` needs besides the snapshot's.
SYNC_COLUMNS = tuple(
    {
        column.key: column
        for column in (
            Instance.id,
            Instance.novita_instance_id,
            Instance.cluster_id,
            Instance.last_synced_at,
            Instance.price_per_hour,  # the rate of a billed period opened now (engine/billing)
            Instance.rootfs_size,
            Instance.next_attempt_at,  # whether a step is due or under way already (`pending`)
            Instance.lock_expires_at,
            *SNAPSHOT_COLUMNS,
        )
    }.values()
)


# Core statements (the ORM's bulk UPDATE by primary key cost several times the statement):
# an executemany whose SET clause is the keys of its parameters other than `b_id`.
INSTANCES = cast(Table, Instance.__table__)
BY_ID = update(INSTANCES).where(INSTANCES.c.id == bindparam("b_id"))


def _by_shape(rows: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Rows as executemany parameters (`id` as `b_id`), grouped by the columns they set."""
    shapes: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row in rows:
        values = {("b_id" if key == "id" else key): value for key, value in row.items()}
        shapes.setdefault(tuple(sorted(values)), []).append(values)
    return list(shapes.values())


async def lock_in_id_order(session: Any, ids: list[str]) -> None:
    """`SELECT ... ORDER BY id FOR UPDATE` over `ids` (sorted), in chunks taken in order."""
    for start in range(0, len(ids), 500):
        await session.execute(
            select(INSTANCES.c.id)
            .where(INSTANCES.c.id.in_(ids[start : start + 500]))
            .order_by(INSTANCES.c.id)
            .with_for_update()
        )


def _older_than(moment: datetime | None, now: datetime, seconds: float) -> bool:
    return moment is None or (now - moment).total_seconds() >= seconds


def needs_reaction(
    row: Any, observation: dict[str, Any], observed_at: datetime, now: datetime, timeout: float
) -> bool:
    """Whether the provisioning step would act on this observation (not merely keep waiting).

    Intermediate states (toCreate, creating, pulling...) change each instance several times on
    its way up; waking a worker for each would cost steps that decide nothing.
    """
    snapshot = replace(snapshot_of(row), observation=observation, observed_at=observed_at)
    decision = decide(snapshot, now=now, timeout=timeout, recheck_after=timeout)
    return decision.action not in (Action.WAIT, Action.IDLE)


def pending(row: Any, now: datetime, timeout: float) -> bool:
    """Whether a provisioning step is due or under way (leased) on this row and already has what
    a fresh `observed_at` would tell it: its observation is newer than its operation's last
    upstream call (a step that sent a stop waits for an observation taken after it, and nothing
    but this sync gives one when the listing shows the same), shows no statusError (its grace
    runs on time), and the operation's deadline has not passed (only an observation taken after
    it proves a timeout)."""
    due = row.next_attempt_at is not None and row.next_attempt_at <= now
    if not (due or (row.lock_expires_at is not None and row.lock_expires_at > now)):
        return False
    observation = fresh_observation(snapshot_of(row))  # the rule `decide` itself applies
    if observation is None or observation.get("statusError"):
        return False
    begun = row.operation_started_at
    return begun is None or (now - begun).total_seconds() < timeout


def seen_again(row: Any, started: datetime, resync_write_interval: float) -> bool:
    """Whether a row seen again unchanged gets `observed_at`/`last_synced_at` written: a row
    with an operation under way needs the fresh `observed_at` (is a start taking?); a row at
    rest only a `last_synced_at` that is not too old, so thousands of idle rows do not rewrite
    every interval."""
    return row.operation is not None or _older_than(
        row.last_synced_at, started, resync_write_interval
    )


async def record(
    db: Database,
    rows: Any,
    found: dict[str, dict[str, Any]],
    started: datetime,
    *,
    startup_timeout: float,
    resync_write_interval: float,
    unchanged: Any = (),
    quiet: set[str] | None = None,
) -> tuple[int, bool]:
    """Write observations: changed rows in full, the rest only as seen again; wake the rows
    whose next provisioning step would act. `unchanged`: rows the sync already knows are seen
    again as they were (not evaluated); `quiet` collects the ids of the evaluated rows seen
    unchanged without a reaction. Returns how many observations changed and whether a row was
    woken."""
    now = utcnow()
    updates: list[dict[str, Any]] = []
    woken: list[dict[str, Any]] = []
    unchanged_ids = [row.id for row in unchanged if seen_again(row, started, resync_write_interval)]
    # Rows seen as they were whose step is due or under way already: only `last_synced_at`.
    # Rewriting their observation (a newer `observed_at`) or waking them again would make each
    # step under way run once more for nothing: during a burst of 1,000 instances reaching
    # running together, every sync run meanwhile did so for the rows not yet done (1.37 steps
    # per instance).
    listed_ids: list[str] = []
    changed = 0
    periods: list[Any] = []  # statements recording the billed periods closed now
    for row in rows:
        observation = found.get(row.novita_instance_id)
        if observation is None:
            continue
        observation = observations.merge(row.observation, observation, started)
        observation, closed = billing.carry(row, observation, started)
        if closed is not None:
            periods += billing.record_period(db.dialect, row.id, closed)
        react = needs_reaction(row, observation, started, now, startup_timeout)
        changed += observation != row.observation
        if observation == row.observation and not react:
            if quiet is not None:
                quiet.add(row.id)
            if seen_again(row, started, resync_write_interval):
                unchanged_ids.append(row.id)
            continue
        if observation == row.observation and pending(row, now, startup_timeout):
            listed_ids.append(row.id)
            continue
        # The columns as a dict at once: merging InstanceChanges per row showed in profiles.
        values = observed(observation, started, row.cluster_id).columns()
        values.update(id=row.id, last_synced_at=started)
        if react:
            woken.append({**values, "next_attempt_at": now})
        elif observation != row.observation:
            updates.append(values)
    async with db.session() as session, session.begin():
        if db.dialect == "postgresql":
            # Every row this transaction writes, locked first in id order: the statements below
            # lock in their own orders (two executemany batches, an IN-list UPDATE that may
            # scan the table), which deadlocked with group commits locking in id order
            # (`DeadlockDetectedError` in the burst benchmark's log).
            ids = {values["id"] for values in updates} | {values["id"] for values in woken}
            await lock_in_id_order(session, sorted(ids | set(unchanged_ids) | set(listed_ids)))
        for batch in (updates, woken):
            batch.sort(key=lambda values: values["id"])  # lock order by id (group_commit.run)
            for shape in _by_shape(batch):  # one Core executemany per shape, not one per row
                await session.execute(BY_ID, shape)
        for statement in periods:
            await session.execute(statement)
        for start in range(0, len(unchanged_ids), 500):
            await session.execute(
                update(INSTANCES)
                .where(INSTANCES.c.id.in_(unchanged_ids[start : start + 500]))
                .values(last_synced_at=started, observed_at=started)
            )
        for start in range(0, len(listed_ids), 500):
            await session.execute(
                update(INSTANCES)
                .where(INSTANCES.c.id.in_(listed_ids[start : start + 500]))
                .values(last_synced_at=started)
            )
    return changed, bool(woken)
