"""`novita-manager costs` and the cost columns of `instances list`, against a real service."""

from __future__ import annotations

import time
from datetime import datetime, timedelta

import pytest

from novita_manager.sdk import ManagerClient
from tests.api.test_instances_e2e import create, wait_status
from tests.cli.helpers import explain, instances, parsed, run_cli
from tests.fixtures.service import ServiceThread


@pytest.fixture
def service(simulator, make_service) -> ServiceThread:
    return make_service(simulator.base_url)


def test_costs_table_and_json_agree_with_the_instances_cost(service) -> None:
    response = create(service, name="billed-1")
    assert response.status_code == 201, response.text
    instance_id = response.json()["instanceId"]
    wait_status(service, instance_id, "running", 60)
    time.sleep(1)

    as_json = run_cli("costs", "--group-by", "instance", "--json", "--url", service.base_url)
    assert as_json.returncode == 0, explain(as_json)
    report = parsed(as_json)
    assert report["groupBy"] == "instance"
    assert "from" in report
    [group] = report["groups"]
    assert group["key"] == instance_id
    assert group["name"] == "billed-1"
    assert group["cost"] > 0
    assert report["spendRatePerHour"] > 0

    table = run_cli("costs", "--group-by", "product", "--url", service.base_url)
    assert table.returncode == 0, explain(table)
    assert "RTX 4090 24GB" in table.stdout
    assert "TOTAL" in table.stdout
    assert "Running now: $" in table.stdout

    listed = instances(service.base_url, "list")
    assert listed.returncode == 0, explain(listed)
    assert "COST $" in listed.stdout
    assert "EXPIRES" in listed.stdout

    bad = run_cli("costs", "--from", "2030-01-01", "--url", service.base_url)
    assert bad.returncode == 2, explain(bad)  # a window starting in the future: 400
    assert "`from` must be before" in bad.stderr + bad.stdout

    # The SDK's call, from a date (midnight UTC) before the instance existed.
    with ManagerClient(service.base_url) as client:
        report = client.costs(since="2026-01-01", group_by="region")
    assert [group.key for group in report.groups] == ["CN-HK-01"]


def test_create_takes_the_limits(service) -> None:
    created = instances(
        service.base_url,
        "create", "--name", "limited", "--product", "RTX 4090 24GB", "--template", "1",
        "--auto-stop-after", "3600", "--auto-delete-after", "2d", "--idle-stop-after", "30m",
        "--max-cost", "5", "--wait", "--json",
    )  # fmt: skip
    assert created.returncode == 0, explain(created)
    view = parsed(created)
    ready = datetime.fromisoformat(view["readyAt"])
    assert datetime.fromisoformat(view["expiresAt"]) - ready == timedelta(hours=1)
    refused = instances(
        service.base_url,
        "create", "--name", "x", "--product", "RTX 4090 24GB", "--template", "1",
        "--auto-stop-after", "soon",
    )  # fmt: skip
    assert refused.returncode == 2, explain(refused)
    assert "autoStopAfter" in refused.stderr + refused.stdout
