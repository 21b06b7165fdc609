"""Typed writes: `InstanceChange` names only instance columns and renders them for the UPDATE."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from novita_manager.domain.statuses import CreateState, Operation, Status
from novita_manager.engine.changes import FIELDS, UNSET, InstanceChange, observed
from novita_manager.engine.leases import DueSooner
from novita_manager.store.models import Instance
from novita_manager.store.types import utcnow


def test_every_field_but_the_wake_rule_is_an_instance_column() -> None:
    columns = {column.key for column in Instance.__table__.c}
    names = FIELDS - {"sooner_if_observed_after"}
    assert names <= columns


def test_a_misspelt_column_is_refused() -> None:
    misspelt: dict[str, Any] = {"create_sate": CreateState.DONE}
    with pytest.raises(TypeError, match="create_sate"):
        InstanceChange(**misspelt)


def test_a_change_reads_its_fields_and_cannot_be_altered() -> None:
    change = InstanceChange(status=Status.RUNNING, operation=None)
    assert change.status is Status.RUNNING
    assert change.operation is None  # set to None: written as NULL
    assert change.ready_at is UNSET  # left alone: not written
    assert change.sets("operation")
    assert not change.sets("ready_at")
    with pytest.raises(AttributeError):
        _ = change.no_such_column
    with pytest.raises(AttributeError):
        change.status = Status.FAILED  # type: ignore[misc]
    assert change == InstanceChange(operation=None, status=Status.RUNNING)
    assert change != InstanceChange(status=Status.RUNNING)
    assert change.merged(None) is change
    assert change.merged(InstanceChange()) is change


def test_values_are_the_set_columns_with_enums_as_stored_strings() -> None:
    change = InstanceChange(status=Status.STOPPED, operation=None, create_state=CreateState.DONE)
    assert change.columns() == {"status": "stopped", "operation": None, "create_state": "done"}
    assert all(type(value) is not Status for value in change.columns().values())


def test_merged_keeps_the_later_fields() -> None:
    now = utcnow()
    change = InstanceChange(operation=Operation.STOP, attempts=3).merged(
        InstanceChange(attempts=0, stopped_at=now)
    )
    assert change.columns() == {"operation": "stop", "attempts": 0, "stopped_at": now}


def test_a_wait_becomes_due_at_once_when_a_newer_observation_was_written() -> None:
    now = utcnow()
    change = InstanceChange(
        next_attempt_at=now + timedelta(seconds=30), sooner_if_observed_after=now
    )
    assert "sooner_if_observed_after" not in change.columns()
    due = change.values(now)["next_attempt_at"]
    assert isinstance(due, DueSooner)
    assert (due.later, due.now, due.conditions) == (
        now + timedelta(seconds=30), now, (("observed_at", ">", now),))  # fmt: skip
    anything = InstanceChange(next_attempt_at=None, sooner_if_observed_after=None).values(now)
    assert anything["next_attempt_at"].conditions == (("observed_at", "is not null", None),)


def test_an_observation_sets_the_observation_columns() -> None:
    now = utcnow()
    change = observed({"status": "running", "portMappings": [1]}, now, "cn-hongkong-1")
    assert change.columns() == {
        "observation": {"status": "running", "portMappings": [1]},
        "observed_at": now,
        "novita_status": "running",
        "spot_status": None,
        "port_mappings": [1],
        "connection_details": {},
        "cluster_id": "cn-hongkong-1",
        "billing_since": None,  # no open billed period in the observation
        "billing_rate": None,
    }
