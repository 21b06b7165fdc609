"""Typed writes to an instance row: `InstanceChange` names the columns a step may change.

A step says what it changes with an `InstanceChange` instead of a dict keyed by column names, so
a misspelt column or a value of the wrong type is a type error (and a TypeError at run time).
`values()` gives the UPDATE's values (enums as their stored strings) and `apply_to()` mirrors the
change on the row a step holds (the webhook's view is rendered from the row and `columns()`
before the write commits: `store.views.instance_json(..., changed=...)`).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from enum import Enum
from typing import Any, Final, TypeVar, Union

from novita_manager.domain.costs import open_period
from novita_manager.domain.statuses import CreateState, Operation, Status
from novita_manager.engine.leases import DueSooner
from novita_manager.store.models import Instance


class _Unset(Enum):
    UNSET = "unset"


UNSET: Final = _Unset.UNSET
T = TypeVar("T")
Maybe = Union[T, _Unset]  # noqa: UP007  (a generic alias: `T | _Unset` cannot be subscripted)


@dataclass(frozen=True, slots=True)
class InstanceChange:
    """The instance columns a step may change; a field left UNSET is not written.

    `sooner_if_observed_after` is not a column: with `next_attempt_at` set, it makes the UPDATE
    itself choose "due now" when an observation newer than this moment (None: any observation)
    was recorded meanwhile (a waiting step must not sleep past news the sync just wrote).
    """

    status: Maybe[Status] = UNSET
    operation: Maybe[Operation | None] = UNSET
    operation_started_at: Maybe[datetime | None] = UNSET
    operation_issued: Maybe[bool] = UNSET
    operation_issued_at: Maybe[datetime | None] = UNSET
    consumed_seq: Maybe[int] = UNSET
    webhook_url: Maybe[str | None] = UNSET
    create_state: Maybe[CreateState] = UNSET
    create_attempts: Maybe[int] = UNSET
    product_id: Maybe[str | None] = UNSET
    cluster_id: Maybe[str | None] = UNSET
    price_per_hour: Maybe[float | None] = UNSET
    # Spot life (domain/recovery.py, engine/provisioning/recover.py).
    cluster_name: Maybe[str | None] = UNSET
    billing_mode: Maybe[str] = UNSET
    recovery: Maybe[str | None] = UNSET
    recoveries: Maybe[int] = UNSET
    last_recovery_at: Maybe[datetime | None] = UNSET
    replaces_novita_id: Maybe[str | None] = UNSET
    spot_status: Maybe[str | None] = UNSET
    reclaim_at: Maybe[datetime | None] = UNSET
    novita_instance_id: Maybe[str | None] = UNSET
    novita_status: Maybe[str | None] = UNSET
    observation: Maybe[dict[str, Any] | None] = UNSET
    observed_at: Maybe[datetime | None] = UNSET
    last_synced_at: Maybe[datetime | None] = UNSET
    port_mappings: Maybe[list[Any]] = UNSET
    connection_details: Maybe[dict[str, Any]] = UNSET
    failure_reason: Maybe[str | None] = UNSET
    attempts: Maybe[int] = UNSET
    last_error: Maybe[str | None] = UNSET
    next_attempt_at: Maybe[datetime | None] = UNSET
    updated_at: Maybe[datetime] = UNSET
    started_at: Maybe[datetime | None] = UNSET
    ready_at: Maybe[datetime | None] = UNSET
    failed_at: Maybe[datetime | None] = UNSET
    stopped_at: Maybe[datetime | None] = UNSET
    deleted_at: Maybe[datetime | None] = UNSET
    # Costs and limits (domain/costs.py, domain/limits.py).
    billing_since: Maybe[datetime | None] = UNSET
    billing_rate: Maybe[float | None] = UNSET
    operation_cause: Maybe[str | None] = UNSET
    sooner_if_observed_after: Maybe[datetime | None] = UNSET

    def columns(self) -> dict[str, Any]:
        """The columns set, with plain values (enums as their stored strings)."""
        values: dict[str, Any] = {}
        for name in _COLUMN_NAMES:  # names cached: `fields()` per call showed in profiles
            value = getattr(self, name)
            if value is not UNSET:
                values[name] = value.value if isinstance(value, Enum) else value
        return values

    def values(self, now: datetime) -> dict[str, Any]:
        """The UPDATE's values: `columns()`, with `next_attempt_at` as a SQL expression when it
        depends on what the row holds at the time of the write."""
        values = self.columns()
        seen = self.sooner_if_observed_after
        if "next_attempt_at" in values and seen is not UNSET:
            condition = ("observed_at", "is not null", None) if seen is None else (
                "observed_at", ">", seen)  # fmt: skip
            values["next_attempt_at"] = DueSooner(values["next_attempt_at"], now, (condition,))
        return values

    def merged(self, other: InstanceChange | None) -> InstanceChange:
        """This change with the fields `other` sets replaced by `other`'s."""
        if other is None:
            return self
        mine = {name: getattr(self, name) for name in _NAMES}
        for name in _NAMES:
            value = getattr(other, name)
            if value is not UNSET:
                mine[name] = value
        return InstanceChange(**mine)

    def sets(self, column: str) -> bool:
        return getattr(self, column) is not UNSET

    def apply_to(self, row: Instance) -> None:
        """Mirror the change on `row` (after the write committed)."""
        for name, value in self.columns().items():
            setattr(row, name, value)


_NAMES = tuple(field.name for field in fields(InstanceChange))
_COLUMN_NAMES = tuple(name for name in _NAMES if name != "sooner_if_observed_after")


def observed(observation: dict[str, Any], at: datetime, cluster_id: str | None) -> InstanceChange:
    """The columns an observation of the instance sets (the sync's and a step's GET alike),
    with the open billed period it carries (`costs.carry_billing`)."""
    billing_since, billing_rate = open_period(observation)
    return InstanceChange(
        billing_since=billing_since,
        billing_rate=billing_rate,
        observation=observation,
        observed_at=at,
        novita_status=observation.get("status"),
        port_mappings=observation.get("portMappings", []),
        connection_details=observation.get("connectionDetails", {}),
        cluster_id=observation.get("clusterId") or cluster_id,
        spot_status=observation.get("spotStatus") or None,
    )
