"""The view of a row as a step's change will leave it, rendered before the write commits."""

from __future__ import annotations

from novita_manager.store.models import Instance
from novita_manager.store.views import view_columns


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
