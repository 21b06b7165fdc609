"""`novita-manager doctor` as a user runs it (a subprocess, configured by environment variables)
against the real simulator under each profile: the report shows that profile's reading of every
point the account can reveal read-only, the exit code says whether the service can work, and the
simulator's call counts prove that nothing was written."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from novita_manager.cli.doctor import DoctorExitCode
from novita_manager.simulator.config import SimulatorConfig
from novita_manager.simulator.server import SimulatorServer, free_port
from tests.cli.helpers import _run, explain, parsed, run_cli
from tests.simulator.helpers import create_body

# What each profile must show (the readings a read-only probe can decide).
EXPECTED: dict[str, dict[str, Any]] = {
    "adverse": {
        "page_base": 0,
        "page_size_cap": 20,
        "list_shape": "reduced",
        "node_shape": "object",
        "products_default_billing": "onDemand",
        "product_ids": "spanning",
    },
    "lenient": {
        "page_base": 1,
        "page_zero": "refused",
        "page_size_cap": None,
        "list_shape": "full",
        "node_shape": "array",
        "products_default_billing": "all",
        "product_ids": "per_cluster",
    },
    "classic": {
        "page_base": 1,
        "page_zero": "same",
        "page_size_cap": None,
        "list_shape": "full",
        "node_shape": "array",
        "products_default_billing": "all",
        "product_ids": "per_cluster",
    },
}
INSTANCES = 21  # one more than the adverse cap, so a cap of 20 shows


def doctor(base_url: str, cwd: Path, *args: str, **env: str):
    """Run in `cwd` (away from the repository's .env), like `serve` is configured."""
    variables = {"NOVITA_API_BASE_URL": base_url, "DEFAULT_REGION": "CN-HK-01", **env}
    return _run(["doctor", *args], 60, str(cwd), variables)


def make_instances(client: httpx.Client, count: int) -> None:
    """Instances through the simulator's own API (never through doctor), on an on-demand offer
    of CN-HK-01 whatever the profile's product ids look like."""
    products = client.get(
        "/products", params={"clusterId": "cn-hongkong-1", "billingMethod": "onDemand"}
    ).json()["data"]
    product_id = next(p["id"] for p in products if p["availableDeploy"])
    for index in range(count):
        body = create_body(name=f"doctor-{index}", productId=product_id, billingMode="onDemand")
        reply = client.post("/gpu/instance/create", json=body)
        assert reply.status_code == 200, reply.text


def writes(simulator) -> list[str]:
    calls = simulator.control.stats()["calls"]
    return sorted(endpoint for endpoint in calls if not endpoint.startswith("GET "))


@pytest.mark.parametrize("simulator_profile", sorted(EXPECTED), indirect=True)
def test_doctor_reports_each_profiles_reading(
    simulator, simulator_http, simulator_profile, tmp_path
) -> None:
    make_instances(simulator_http, INSTANCES)
    assert writes(simulator) == ["POST /gpu/instance/create"]
    created = simulator.control.stats()["calls"]["POST /gpu/instance/create"]

    result = doctor(simulator.base_url, tmp_path, "--json")

    assert result.returncode == DoctorExitCode.OK, explain(result)
    report = parsed(result)
    assert report["outcome"] == "ok"
    assert report["exitCode"] == 0
    readings = report["readings"]
    for name, value in EXPECTED[simulator_profile].items():
        assert name in readings, f"{name} undecided: {explain(result)}"
        assert readings[name] == value, f"{name} under {simulator_profile}: {readings}"
    checks = {check["id"]: check for check in report["checks"]}
    assert checks["key"]["status"] == "ok"
    assert checks["region"]["status"] == "ok"
    assert checks["spot_offers"]["status"] == "ok"
    for check in checks.values():  # stable keys, a question and the service's answer on each
        assert set(check) == {
            "id",
            "question",
            "status",
            "observed",
            "service",
            "readings",
            "relied",
        }
        assert check["question"]
        assert check["service"]
    # Read-only: the only write the simulator ever saw is the test's own creates.
    assert writes(simulator) == ["POST /gpu/instance/create"]
    assert simulator.control.stats()["calls"]["POST /gpu/instance/create"] == created


@pytest.mark.parametrize("simulator_profile", ["adverse"], indirect=True)
def test_fresh_account_decides_paging_from_templates(simulator, tmp_path) -> None:
    """No instance at all: the page base comes from /templates; the shapes are undecidable
    (a warning, not a failure: exit 0)."""
    result = doctor(simulator.base_url, tmp_path, "--json")
    assert result.returncode == 0, explain(result)
    report = parsed(result)
    assert report["readings"]["page_base"] == 0
    checks = {check["id"]: check for check in report["checks"]}
    assert "instances: undecidable: no items" in checks["page_base"]["observed"]
    assert checks["list_shape"]["status"] == "warn"
    assert "undecidable" in checks["node_shape"]["observed"]
    assert writes(simulator) == []


@pytest.mark.parametrize("simulator_profile", ["adverse"], indirect=True)
def test_readable_report_one_line_per_check(simulator, simulator_http, tmp_path) -> None:
    make_instances(simulator_http, 2)
    result = doctor(simulator.base_url, tmp_path)
    assert result.returncode == 0, explain(result)
    out = result.stdout
    assert out.startswith(f"Novita at {simulator.base_url}, region CN-HK-01")
    for line in (
        "ok    key ",
        "ok    page_base                 instances: pageNum=0 is the first page",
        "ok    list_shape                list items are reduced",
        "ok    node_shape                GET node is an object",
        "ok    products_default_billing  without billingMethod only on-demand offers",
        "skip  capacity_error",
    ):
        assert f"\n{line}" in out, out
    assert "service: " in out
    assert out.rstrip().endswith("Exit 0.")


def test_unknown_region_fails_with_exit_1(simulator, tmp_path) -> None:
    result = doctor(simulator.base_url, tmp_path, "--json", "--region", "MARS-01")
    assert result.returncode == DoctorExitCode.FAILED, explain(result)
    checks = {check["id"]: check for check in parsed(result)["checks"]}
    assert checks["region"]["status"] == "fail"
    assert "'MARS-01' names no cluster" in checks["region"]["observed"]
    assert checks["spot_offers"]["status"] == "skip"


def test_wrong_key_is_refused_with_exit_1_and_never_printed(tmp_path) -> None:
    wrong = "sk_wrong_doctor_key_1234"
    with SimulatorServer(SimulatorConfig(api_key="sk_right_doctor_key")) as server:
        text = doctor(server.base_url, tmp_path, NOVITA_API_KEY=wrong)
        as_json = doctor(server.base_url, tmp_path, "--json", NOVITA_API_KEY=wrong)
        calls = server.control.stats()["calls"]
    for result in (text, as_json):
        assert result.returncode == int(DoctorExitCode.FAILED) == 1, explain(result)
        assert "key refused" in result.stdout
        assert wrong not in result.stdout + result.stderr
    report = parsed(as_json)
    assert report["outcome"] == "failed"
    assert [check["id"] for check in report["checks"]] == ["key"]  # nothing else is asked
    assert calls == {"GET /clusters": {"401": 2}}


def test_unreachable_novita_has_its_own_exit_code(tmp_path) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}/gpu-instance/openapi"
    result = doctor(nowhere, tmp_path, "--json")
    assert result.returncode == int(DoctorExitCode.UNREACHABLE) == 6, explain(result)
    report = parsed(result)
    assert report["outcome"] == "unreachable"
    assert nowhere in report["unreachable"]
    text = doctor(nowhere, tmp_path)
    assert text.returncode == 6
    assert "UNREACHABLE" in text.stdout


def test_help_documents_the_exit_codes(tmp_path) -> None:
    result = run_cli("doctor", "--help", cwd=str(tmp_path))
    assert result.returncode == 0
    for text in ("Exit codes", "6 Novita unreachable", "--json", "--region"):
        assert text in result.stdout, result.stdout


def test_rate_limit_headers_are_reported(simulator, tmp_path) -> None:
    """A 429 with Retry-After (retried once by the client) shows up in the report."""
    simulator.control.set_faults(
        [{"endpoint": "GET /clusters", "kind": "rate_limit", "retryAfter": 1, "times": 1}]
    )
    result = doctor(simulator.base_url, tmp_path, "--json")
    assert result.returncode == 0, explain(result)
    checks = {check["id"]: check for check in parsed(result)["checks"]}
    assert "retry-after: 1" in checks["rate_limit_headers"]["observed"]


def test_novita_errors_are_unavailable_not_a_finding(simulator, tmp_path) -> None:
    """5xx on every /products call: those lines fail, but the exit code says "try later" (5),
    not "an assumption does not hold" (1)."""
    simulator.control.set_faults([{"endpoint": "GET /products", "kind": "error", "status": 500}])
    result = doctor(simulator.base_url, tmp_path, "--json")
    assert result.returncode == DoctorExitCode.UNAVAILABLE, explain(result)
    report = parsed(result)
    assert report["outcome"] == "unavailable"
    checks = {check["id"]: check for check in report["checks"]}
    assert checks["key"]["status"] == "ok"
    assert checks["spot_offers"]["status"] == "fail"
    assert "could not ask" in checks["spot_offers"]["observed"]

    simulator.control.set_faults([{"endpoint": "*", "kind": "error", "status": 503}])
    first = doctor(simulator.base_url, tmp_path, "--json")
    assert first.returncode == DoctorExitCode.UNAVAILABLE, explain(first)
    assert "answered only with errors" in parsed(first)["unreachable"]
