"""The input of `domain.lifecycle.decide` read from an instance row, in one place.

`SNAPSHOT_COLUMNS` are the columns `snapshot_of` reads; the status sync selects them (and the
provisioning pipeline has the whole row), so adding an input to `Snapshot` is one edit here and
no row can miss it (tests/engine/test_snapshots.py builds a snapshot from a row loaded with only
these columns).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from novita_manager.domain.lifecycle import Snapshot
from novita_manager.domain.statuses import Operation, Status
from novita_manager.store.models import Instance

SNAPSHOT_COLUMNS = (
    Instance.status,
    Instance.operation,
    Instance.operation_issued,
    Instance.operation_started_at,
    Instance.operation_issued_at,
    Instance.novita_instance_id,
    Instance.observation,
    Instance.observed_at,
    Instance.reclaim_at,
    Instance.recovery,
    Instance.replaces_novita_id,
)


class SnapshotRow(Protocol):
    """What `snapshot_of` reads: an `Instance`, or a row selected with `SNAPSHOT_COLUMNS`."""

    @property
    def status(self) -> str: ...
    @property
    def operation(self) -> str | None: ...
    @property
    def operation_issued(self) -> bool: ...
    @property
    def operation_started_at(self) -> datetime | None: ...
    @property
    def operation_issued_at(self) -> datetime | None: ...
    @property
    def novita_instance_id(self) -> str | None: ...
    @property
    def observation(self) -> dict[str, Any] | None: ...
    @property
    def observed_at(self) -> datetime | None: ...
    @property
    def reclaim_at(self) -> datetime | None: ...
    @property
    def recovery(self) -> str | None: ...
    @property
    def replaces_novita_id(self) -> str | None: ...


def snapshot_of(row: SnapshotRow) -> Snapshot:
    """What `decide` needs to know of the row."""
    return Snapshot(
        status=Status(row.status),
        operation=Operation(row.operation) if row.operation else None,
        operation_issued=row.operation_issued,
        operation_started_at=row.operation_started_at,
        operation_issued_at=row.operation_issued_at,
        has_upstream=row.novita_instance_id is not None,
        observation=row.observation,
        observed_at=row.observed_at,
        reclaim_announced=row.reclaim_at is not None,
        recovery=row.recovery,
        replacing=(
            row.replaces_novita_id is not None and row.replaces_novita_id == row.novita_instance_id
        ),
    )
