"""Typed writes to an instance row: `InstanceChange` names the columns a step may change.

A step says what it changes with an `InstanceChange` instead of a dict keyed by column names, so
a misspelt column or a value of the wrong type is a type error (and a misspelt column a
TypeError at run time).
`values()` gives the UPDATE's values (enums as their stored strings) and `apply_to()` mirrors the
change on the row a step holds (the webhook's view is rendered from the row and `columns()`
before the write commits: `store.views.instance_json(..., changed=...)`).
"""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Any, Final, TypedDict, Unpack

from novita_manager.domain.costs import open_period
from novita_manager.domain.statuses import CreateState, Operation, Status
from novita_manager.engine.leases import DueSooner
from novita_manager.store.models import Instance


class _Unset(Enum):
    UNSET = "unset"


UNSET: Final = _Unset.UNSET


class ChangeFields(TypedDict, total=False):
    """The instance columns a step may change, with their types; a column left out is not
    written.

    `sooner_if_observed_after` is not a column: with `next_attempt_at` set, it makes the UPDATE
    itself choose "due now" when an observation newer than this moment (None: any observation)
    was recorded meanwhile (a waiting step must not sleep past news the sync just wrote).
    """

    status: Status
    operation: Operation | None
    operation_started_at: datetime | None
    operation_issued: bool
    operation_issued_at: datetime | None
    consumed_seq: int
    webhook_url: str | None
    create_state: CreateState
    create_attempts: int
    product_id: str | None
    cluster_id: str | None
    price_per_hour: float | None
    # Spot life (domain/recovery.py, engine/provisioning/recover.py).
    cluster_name: str | None
    billing_mode: str
    recovery: str | None
    recoveries: int
    last_recovery_at: datetime | None
    replaces_novita_id: str | None
    spot_status: str | None
    reclaim_at: datetime | None
    novita_instance_id: str | None
    novita_status: str | None
    observation: dict[str, Any] | None
    observed_at: datetime | None
    last_synced_at: datetime | None
    port_mappings: list[Any]
    connection_details: dict[str, Any]
    failure_reason: str | None
    attempts: int
    last_error: str | None
    next_attempt_at: datetime | None
    updated_at: datetime
    started_at: datetime | None
    ready_at: datetime | None
    failed_at: datetime | None
    stopped_at: datetime | None
    deleted_at: datetime | None
    # Costs and limits (domain/costs.py, domain/limits.py).
    billing_since: datetime | None
    billing_rate: float | None
    operation_cause: str | None
    sooner_if_observed_after: datetime | None


FIELDS: Final = frozenset(ChangeFields.__annotations__)
_WAKE_RULE = "sooner_if_observed_after"


class InstanceChange:
    """An immutable set of `ChangeFields`: `InstanceChange(status=..., ready_at=...)`.

    Only the fields given are held (a dict). It was a frozen dataclass of every field: a
    provisioning step builds and merges several, and each build set all 42 slots through
    `object.__setattr__` (a tenth of a millisecond per step reaching `running`, py-spy on
    `bench.burst`). Keyword arguments are checked by type checkers against `ChangeFields` and
    at run time against its names (a misspelt column is a TypeError, as before); reading a
    field gives its value, or `UNSET` when the change leaves it alone.
    """

    __slots__ = ("_fields",)
    _fields: dict[str, Any]

    def __init__(self, **fields: Unpack[ChangeFields]) -> None:
        if not fields.keys() <= FIELDS:
            unknown = ", ".join(sorted(fields.keys() - FIELDS))
            raise TypeError(f"InstanceChange got unexpected field(s): {unknown}")
        object.__setattr__(self, "_fields", fields)

    @classmethod
    def _of(cls, fields: dict[str, Any]) -> InstanceChange:
        change = object.__new__(cls)
        object.__setattr__(change, "_fields", fields)
        return change

    def __getattr__(self, name: str) -> Any:
        if name in FIELDS:
            return self._fields.get(name, UNSET)
        raise AttributeError(name)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("an InstanceChange cannot be changed: merge another into it")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, InstanceChange) and self._fields == other._fields

    __hash__ = None  # type: ignore[assignment]  # (its values may be dicts)

    def __repr__(self) -> str:
        inner = ", ".join(f"{name}={value!r}" for name, value in self._fields.items())
        return f"InstanceChange({inner})"

    def columns(self) -> dict[str, Any]:
        """The columns set, with plain values (enums as their stored strings)."""
        return {
            name: value.value if isinstance(value, Enum) else value
            for name, value in self._fields.items()
            if name != _WAKE_RULE
        }

    def values(self, now: datetime) -> dict[str, Any]:
        """The UPDATE's values: `columns()`, with `next_attempt_at` as a SQL expression when it
        depends on what the row holds at the time of the write."""
        values = self.columns()
        if "next_attempt_at" in values and _WAKE_RULE in self._fields:
            seen = self._fields[_WAKE_RULE]
            condition = ("observed_at", "is not null", None) if seen is None else (
                "observed_at", ">", seen)  # fmt: skip
            values["next_attempt_at"] = DueSooner(values["next_attempt_at"], now, (condition,))
        return values

    def merged(self, other: InstanceChange | None) -> InstanceChange:
        """This change with the fields `other` sets replaced by `other`'s."""
        if other is None or not other._fields:
            return self
        return InstanceChange._of({**self._fields, **other._fields})

    def sets(self, column: str) -> bool:
        return column in self._fields

    def apply_to(self, row: Instance) -> None:
        """Mirror the change on `row` (after the write committed)."""
        for name, value in self.columns().items():
            setattr(row, name, value)


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
