"""The view of a row as a step's change will leave it, rendered before the write commits."""

from __future__ import annotations

import random

from novita_manager.store.models import Instance
from novita_manager.store.views import instance_json, instance_view, view_columns
from tests.store.test_instance_reads import BASE, NOW, random_row


def test_changed_columns_replace_the_rows_and_the_row_is_left_alone() -> None:
    row = Instance(id="x", status="starting", novita_status="pulling", observation=None)
    columns = view_columns(row, {"status": "running", "novita_status": "running", "attempts": 4})
    assert (columns["status"], columns["novita_status"]) == ("running", "running")
    assert "attempts" not in columns  # not a view column
    assert (row.status, row.novita_status) == ("starting", "pulling")
    assert view_columns(row)["status"] == "starting"


def test_the_cluster_comes_from_the_changed_observation_until_recorded() -> None:
    row = Instance(id="x", cluster_id=None, observation={"clusterId": "old"})
    assert view_columns(row)["cluster_id"] == "old"
    assert view_columns(row, {"observation": {"clusterId": "new"}})["cluster_id"] == "new"
    assert view_columns(row, {"cluster_id": "set", "observation": {}})["cluster_id"] == "set"


def test_the_json_view_is_what_the_typed_view_dumps() -> None:
    """A webhook carries `instance_json` without validating it into `InstanceView`: on many
    random rows (every status, spot, costs, connection details), and as a change leaves them,
    it is what the typed model's JSON dump gives."""
    rng = random.Random(7)
    for index in range(300):
        row = random_row(rng, index, BASE)
        stale = rng.random() < 0.3
        typed = instance_view(row, stale=stale, now=NOW).model_dump(mode="json")
        assert instance_json(row, stale=stale, now=NOW) == typed
        changed = {"status": "running", "ready_at": NOW, "last_error": None, "failure_reason": None}
        typed = instance_view(row, stale=False, changed=changed, now=NOW).model_dump(mode="json")
        assert instance_json(row, stale=False, changed=changed, now=NOW) == typed
