"""What lets the sync skip a row seen exactly as at its last run.

Every interval the sync sees every managed instance, and almost all of them are as they were:
evaluating each again (summary, merge with the last observation, `decide`) cost O(instances)
of CPU per interval. A row is skipped when its key is what it was at the last run, where that
run found it unchanged and needing no reaction: the listed instance's fingerprint (every field
an observation is made of), the row's `observed_at` and `updated_at` (every observation write
sets the first, every step's write the second, so a write by anyone else shows), and the
columns the decision reads. The stored observation itself is read (`observations_of`) only for
the rows evaluated: reading and keeping every row's observation text each interval cost about
half a kilobyte per managed instance, in memory and in transfer. With equal inputs the
decision differs only by time, and time matters in two cases, which are never skipped: a
statusError (it fails an instance once it has lasted `STATUS_ERROR_GRACE_SECONDS`) and an
operation past its deadline (the sync's fresh `observed_at` proves the timeout;
`StatusSync._calm`).
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections.abc import Container, Iterable
from types import SimpleNamespace
from typing import Any

from orjson import dumps, loads
from sqlalchemy import Text, cast, select

from novita_manager.domain.statuses import Status
from novita_manager.engine.status_sync.record import SYNC_COLUMNS
from novita_manager.novita.listed import ListedInstance
from novita_manager.store.db import Database
from novita_manager.store.models import Instance

# The sync's columns without the observation (read for the evaluated rows only), with
# `updated_at` for the settle key.
RAW_SYNC_COLUMNS = tuple(
    column for column in (*SYNC_COLUMNS, Instance.updated_at) if column.key != "observation"
)
MANAGED = Instance.novita_instance_id.is_not(None) & (Instance.status != Status.DELETED.value)
# As text, parsed here: on PostgreSQL the driver itself decodes json columns, whatever type
# SQLAlchemy is told, so a SQL cast.
OBSERVATION_TEXT = cast(Instance.observation, Text)
CHUNK = 500


async def observations_of(db: Database, ids: list[str]) -> dict[str, str | None]:
    """The stored observation (as JSON text) of each row id."""
    found: dict[str, str | None] = {}
    async with db.read_session() as session:
        for start in range(0, len(ids), CHUNK):
            query = select(Instance.id, OBSERVATION_TEXT).where(
                Instance.id.in_(ids[start : start + CHUNK])
            )
            found.update((row_id, text) for row_id, text in await session.execute(query))
    return found


def parsed(row: Any, text: str | None) -> Any:
    """A row of `RAW_SYNC_COLUMNS` with its observation (`observations_of`) parsed, as
    `record` reads rows."""
    return SimpleNamespace(**row._asdict(), observation=None if text is None else loads(text))


def settle_key(row: Any, item: ListedInstance, own_writes: Container[Any] = ()) -> int | None:
    """A digest of the inputs of this row's evaluation; None when it must be evaluated whatever
    they are. A digest, not the inputs: kept for every managed row between runs, the inputs
    (the listed port mappings and the rest) held about 1.3 KiB per row (tracemalloc, 10,000
    rows); the fingerprint is serialised by orjson (lists and dicts included) and hashed with
    the columns. Two different inputs with one digest (a 64-bit collision) would let one row
    skip one evaluation until its next change; the provisioning step's own rechecks remain."""
    if item.status_error is not None:
        return None  # a statusError fails an instance after a grace: time matters
    # The row's id is in the digest too, so the keys of the settled rows are a set of numbers
    # (`SettledRows`), without a row id beside each.
    # An `observed_at` the sync itself wrote (`own_writes`: the starts of its recent runs) is
    # no news: rows with an operation under way get it rewritten at every run, and keying on it
    # kept every such row from settling (a thousand creating rows cost a quarter of a core).
    observed_at = None if row.observed_at in own_writes else row.observed_at
    return hash(
        (
            row.id,
            dumps(item.fingerprint()),
            observed_at,
            row.updated_at,
            row.status,
            row.operation,
            row.operation_issued,
            row.operation_started_at,
            row.operation_issued_at,
            row.cluster_id,
            row.last_synced_at is None,
        )
    )


class SettledRows:
    """The settle keys of the rows a run found settled, kept until the next run: a sorted array
    of 64-bit numbers, searched by bisection.

    Not a dict of row id -> key: its 10,000 ids and keys were small objects that lived from one
    run to the next, allocated amid the run's short-lived ones (the listing, the rows), so they
    kept alive Python's memory arenas that the run's peak had filled, and the process its size
    at that peak."""

    __slots__ = ("_keys",)

    def __init__(self, keys: Iterable[int] = ()) -> None:
        self._keys = array("q", sorted(keys))

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, int):
            return False
        index = bisect_left(self._keys, key)
        return index < len(self._keys) and self._keys[index] == key

    def __len__(self) -> int:
        return len(self._keys)
