"""What lets the sync skip a row seen exactly as at its last run.

Every interval the sync sees every managed instance, and almost all of them are as they were:
evaluating each again (summary, merge with the last observation, `decide`) cost O(instances)
of CPU per interval. A row is skipped when its key is what it was at the last run, where that
run found it unchanged and needing no reaction: the listed instance's fingerprint (every field
an observation is made of), the stored observation as text (so a write by anyone else shows),
and every other column the decision reads. With equal inputs the decision differs only by time,
and time matters in two cases, which are never skipped: a statusError (it fails an instance
once it has lasted `STATUS_ERROR_GRACE_SECONDS`) and an operation past its deadline (the sync's
fresh `observed_at` proves the timeout; `StatusSync._calm`).
"""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

from sqlalchemy import Text, cast

from novita_manager.domain.statuses import Status
from novita_manager.engine.status_sync.record import SYNC_COLUMNS
from novita_manager.novita.listed import ListedInstance
from novita_manager.store.models import Instance

# The sync's columns with the observation as text, parsed only for rows evaluated. A SQL cast:
# on PostgreSQL the driver itself decodes json columns, whatever type SQLAlchemy is told.
RAW_SYNC_COLUMNS = tuple(
    cast(Instance.observation, Text).label("observation_json")
    if column.key == "observation"
    else column
    for column in SYNC_COLUMNS
)
MANAGED = Instance.novita_instance_id.is_not(None) & (Instance.status != Status.DELETED.value)


def parsed(row: Any) -> Any:
    """A row of `RAW_SYNC_COLUMNS` with its observation parsed, as `record` reads rows."""
    values = row._asdict()
    text = values.pop("observation_json")
    return SimpleNamespace(**values, observation=None if text is None else json.loads(text))


def settle_key(row: Any, item: ListedInstance) -> tuple[Any, ...] | None:
    """The inputs of this row's evaluation; None when it must be evaluated whatever they are."""
    if item.status_error is not None:
        return None  # a statusError fails an instance after a grace: time matters
    return (
        item.fingerprint(),
        row.observation_json,
        row.status,
        row.operation,
        row.operation_issued,
        row.operation_started_at,
        row.operation_issued_at,
        row.cluster_id,
        row.last_synced_at is None,
    )
