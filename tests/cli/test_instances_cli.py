"""`novita-manager instances …` against the real service and simulator (servers on 127.0.0.1)."""

from __future__ import annotations

import httpx
import pytest

from tests.cli.helpers import explain, instances, parsed, run_cli
from tests.fixtures.service import ServiceThread, free_port

CREATE = ["create", "--name", "cli-1", "--product", "RTX 4090 24GB", "--template", "1"]


@pytest.fixture
def service(simulator, make_service, webhook_receiver) -> ServiceThread:
    return make_service(simulator.base_url, WEBHOOK_URL=webhook_receiver.url)


def test_create_wait_ends_running_and_json_is_the_api_view(service) -> None:
    result = instances(service.base_url, *CREATE, "--wait", "--timeout", "30", "--json")
    assert result.returncode == 0, explain(result)
    view = parsed(result)
    assert view["status"] == "running"
    assert view["novitaStatus"] == "running"
    assert view["name"] == "cli-1"
    assert view["novitaInstanceId"]
    assert "running" in result.stderr  # progress goes to stderr, stdout stays JSON
    sent = httpx.get(f"{service.base_url}/api/instances/{view['id']}", timeout=10).json()
    assert list(view) == list(sent)  # every field in the API's order, nulls included
    assert view["deletedAt"] is None
    # What grows with time while it runs (the sync's time, cost to date) may differ, forward.
    moving = ("lastSyncedAt", "stale", "costToDate", "billedSeconds")
    assert view == {**sent, **{field: view[field] for field in moving}}
    assert sent["billedSeconds"] >= view["billedSeconds"]
    assert sent["costToDate"] >= view["costToDate"]

    by_novita_id = instances(service.base_url, "get", view["novitaInstanceId"], "--json")
    assert by_novita_id.returncode == 0, explain(by_novita_id)
    assert parsed(by_novita_id)["id"] == view["id"]

    listed = instances(service.base_url, "list", "--json")
    assert listed.returncode == 0, explain(listed)
    page = parsed(listed)
    assert page["total"] == 1
    assert [item["id"] for item in page["instances"]] == [view["id"]]


def test_tables_by_default(service) -> None:
    options = [
        "--gpu-num", "1", "--rootfs-size", "60", "--region", "CN-HK-01",
        "--billing-mode", "spot", "--idempotency-key", "k-1",
    ]  # fmt: skip
    created = instances(service.base_url, *CREATE, *options)
    assert created.returncode == 0, explain(created)
    assert "creating" in created.stdout
    assert "CN-HK-01" in created.stdout
    instance_id = created.stdout.split("instanceId", 1)[1].split()[0]

    again = instances(service.base_url, *CREATE, *options, "--json")
    assert again.returncode == 0, explain(again)
    assert parsed(again)["instanceId"] == instance_id  # same key, same body: nothing new

    listed = instances(service.base_url, "list")
    assert listed.returncode == 0, explain(listed)
    assert instance_id in listed.stdout
    assert "cli-1" in listed.stdout
    assert "of 1" in listed.stdout

    shown = instances(service.base_url, "get", instance_id)
    assert shown.returncode == 0, explain(shown)
    for text in ("cli-1", "RTX 4090 24GB", "novitaStatus", "pricePerHour"):
        assert text in shown.stdout


def test_unknown_product_is_exit_2_with_the_message(service) -> None:
    args = ["create", "--name", "x", "--product", "No Such GPU", "--template", "1"]
    result = instances(service.base_url, *args)
    assert result.returncode == 2, explain(result)
    assert "VALIDATION_ERROR" in result.stderr
    assert "productName" in result.stderr
    assert "No Such GPU" in result.stderr

    as_json = instances(service.base_url, *args, "--json")
    assert as_json.returncode == 2
    assert parsed(as_json)["error"]["code"] == "VALIDATION_ERROR"


def test_invalid_fields_list_every_detail(service) -> None:
    result = instances(
        service.base_url, "create", "--name", "bad name!", "--product", "RTX 4090 24GB",
        "--template", "1", "--gpu-num", "9",
    )  # fmt: skip
    assert result.returncode == 2, explain(result)
    assert "- name:" in result.stderr
    assert "- gpuNum:" in result.stderr


def test_unknown_id_is_exit_3(service) -> None:
    result = instances(service.base_url, "get", "no-such-instance")
    assert result.returncode == 3, explain(result)
    assert "INSTANCE_NOT_FOUND" in result.stderr
    assert "no-such-instance" in result.stderr


def test_stop_start_delete_and_conflict_is_exit_4(service) -> None:
    url = service.base_url
    created = instances(url, *CREATE, "--wait", "--timeout", "30", "--json")
    assert created.returncode == 0, explain(created)
    instance_id = parsed(created)["id"]

    stopped = instances(url, "stop", instance_id, "--wait", "--timeout", "30", "--json")
    assert stopped.returncode == 0, explain(stopped)
    assert parsed(stopped)["status"] == "stopped"

    again = instances(url, "stop", instance_id)
    assert again.returncode == 4, explain(again)
    assert "INVALID_STATE" in again.stderr
    assert "stopped" in again.stderr

    started = instances(url, "start", instance_id, "--wait", "--timeout", "30")
    assert started.returncode == 0, explain(started)
    assert "running" in started.stdout

    deleted = instances(url, "delete", instance_id, "--json")
    assert deleted.returncode == 0, explain(deleted)
    assert parsed(deleted) == {
        "instanceId": instance_id,
        "status": "deleting",
        "message": parsed(deleted)["message"],
        "requestSeq": 3,  # stop, start, delete
    }


def test_failed_create_wait_is_exit_1_with_last_error(service, simulator) -> None:
    simulator.control.set_faults(
        [{"endpoint": "POST /gpu/instance/create", "kind": "error", "status": 400}]
    )
    result = instances(service.base_url, *CREATE, "--wait", "--timeout", "30")
    assert result.returncode == 1, explain(result)
    assert "failed" in result.stdout
    assert "Novita rejected the create" in result.stderr


def test_connection_refused_is_exit_6_with_a_hint() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = instances(url, "list")
    assert result.returncode == 6, explain(result)
    assert f"Is the service running at {url}?" in result.stderr


def test_api_key_from_the_environment(simulator, make_service) -> None:
    service = make_service(simulator.base_url, API_KEYS="k-secret")
    refused = instances(service.base_url, "list")
    assert refused.returncode == 7, explain(refused)
    assert "UNAUTHORIZED" in refused.stderr
    allowed = instances(service.base_url, "list", "--json", NOVITA_MANAGER_API_KEY="k-secret")
    assert allowed.returncode == 0, explain(allowed)
    assert parsed(allowed)["total"] == 0


def test_url_from_the_environment(service) -> None:
    result = run_cli("instances", "list", "--json", NOVITA_MANAGER_URL=service.base_url)
    assert result.returncode == 0, explain(result)
    assert parsed(result)["instances"] == []


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["demo"],
        ["serve"],
        ["simulator"],
        ["instances"],
        ["instances", "create"],
        ["instances", "list"],
        ["instances", "get"],
        ["instances", "start"],
        ["instances", "stop"],
        ["instances", "delete"],
    ],
)
def test_help_explains_every_command(command: list[str]) -> None:
    from typer.testing import CliRunner

    from novita_manager.cli import app

    result = CliRunner().invoke(app, [*command, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output
    if command[:1] == ["instances"] or not command:
        assert "Exit codes" in result.output


def test_create_sends_the_spot_life_options(service) -> None:
    spot = ["--regions", "AS-SGP-02", "--max-price", "0.2", "--on-reclaim", "recreate"]
    result = instances(service.base_url, *CREATE, *spot, "--max-recoveries", "2", "--json")
    assert result.returncode == 0, explain(result)
    created = parsed(result)
    assert created["pricePerHour"] == pytest.approx(0.19)  # no --region: AS-SGP-02 is it
    refused = instances(service.base_url, *CREATE, "--max-price", "0.1", "--json")
    assert refused.returncode != 0
    assert "maxPricePerHour" in refused.stdout + refused.stderr
