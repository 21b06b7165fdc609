"""The command line with names, the event stream (`--wait`, `instances watch`), Ctrl-C, the
`--url` check and the catalogue commands, against the real service and simulator."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time

import httpx
import pytest

from tests.cli.helpers import CLI, explain, instances, parsed, run_cli
from tests.fixtures.service import ServiceThread
from tests.fixtures.waiting import wait_for


@pytest.fixture
def service(simulator, make_service) -> ServiceThread:
    return make_service(simulator.base_url)


def post(service: ServiceThread, name: str) -> str:
    body = {"name": name, "productName": "RTX 4090 24GB", "templateId": "1"}
    response = httpx.post(f"{service.base_url}/api/instances", json=body, timeout=15)
    assert response.status_code == 201, response.text
    instance_id: str = response.json()["instanceId"]
    return instance_id


def gets_of_one_instance(service: ServiceThread) -> float:
    """GET /api/instances/{id} answered so far (from the service's own metrics)."""
    text = httpx.get(f"{service.base_url}/metrics", timeout=5).text
    route = 'route="/api/instances/{instanceId}"'
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("novita_manager_http_requests_total{")
        and 'method="GET"' in line
        and route in line
    )


def popen(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*CLI, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={"COLUMNS": "200", "NO_COLOR": "1", "PATH": "/usr/bin:/bin"},
    )


def test_names_work_where_ids_do_and_an_ambiguous_name_is_exit_4(service) -> None:
    url = service.base_url
    instance_id = post(service, "by-name")
    got = instances(url, "get", "by-name", "--json")
    assert got.returncode == 0, explain(got)
    assert parsed(got)["id"] == instance_id

    wait_for(lambda: instances(url, "get", instance_id, "--json").stdout.count('"running"'), 30)
    before = gets_of_one_instance(service)
    assert before >= 2  # the metric is read right: the gets above are counted
    started = time.monotonic()
    stopped = instances(url, "stop", "by-name", "--wait", "--timeout", "30", "--json")
    took = time.monotonic() - started
    assert stopped.returncode == 0, explain(stopped)
    assert parsed(stopped)["status"] == "stopped"
    # The wait followed the event stream: one reading to start, then one per event of the
    # stop (stopping, stopped, the webhook event), not one a second.
    readings = gets_of_one_instance(service) - before
    assert 2 <= readings <= 5, (readings, took)

    post(service, "twin")
    post(service, "twin")
    ambiguous = instances(url, "delete", "twin")
    assert ambiguous.returncode == 4, explain(ambiguous)
    assert "several instances are named 'twin'" in ambiguous.stderr
    missing = instances(url, "get", "nobody")
    assert missing.returncode == 3, explain(missing)
    assert "nobody" in missing.stderr


def test_url_without_a_scheme_is_a_usage_error() -> None:
    for command in (["instances", "list"], ["offers"], ["instances", "watch"]):
        result = run_cli(*command, "--url", "127.0.0.1:3000")
        assert result.returncode == 2, explain(result)
        assert "not an http:// or https:// URL" in result.stderr


def test_ctrl_c_during_wait_says_the_instance_goes_on(service, simulator) -> None:
    # The create stays "creating" long enough to be interrupted.
    simulator.control.set_faults(
        [{"endpoint": "POST /gpu/instance/create", "kind": "delay", "seconds": 20}]
    )
    command = ["instances", "create", "--name", "interrupted", "--product", "RTX 4090 24GB"]
    process = popen(*command, "--template", "1", "--wait", "--url", service.base_url)
    wait_for(
        lambda: httpx.get(f"{service.base_url}/api/instances?name=interrupted").json()["total"],
        20,
        "the create",
    )
    time.sleep(1.0)  # inside the wait
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=20)
    assert process.returncode == 130, stderr
    assert "Stopped waiting" in stderr
    assert "keeps billing" in stderr
    assert re.search(r"novita-manager instances stop [0-9a-f]{32}", stderr), stderr


def test_watch_prints_events_as_they_happen_and_resumes_by_id(service) -> None:
    instance_id = post(service, "watched")
    process = popen(
        "instances", "watch", "watched", "--since", "0", "--json", "--url", service.base_url
    )
    wait_for(
        lambda: (
            httpx.get(f"{service.base_url}/api/instances/{instance_id}").json()["status"]
            == "running"
        ),
        30,
        "running",
    )
    httpx.post(f"{service.base_url}/api/instances/{instance_id}/stop", timeout=10)
    lines: list[dict[str, object]] = []
    assert process.stdout is not None
    while not any(line["type"] == "instance.stopped" for line in lines):
        lines.append(json.loads(process.stdout.readline()))
    process.send_signal(signal.SIGINT)
    rest, stderr = process.communicate(timeout=20)
    assert process.returncode == 0, stderr
    lines += [json.loads(line) for line in rest.splitlines() if line.strip()]
    history = httpx.get(f"{service.base_url}/api/instances/{instance_id}/events").json()
    expected = [(e["id"], e["type"]) for e in history["events"]]
    assert [(line["id"], line["type"]) for line in lines] == expected
    assert f"instances watch --since {lines[-1]['id']}" in stderr


def test_catalogue_commands(service) -> None:
    url = service.base_url
    offers = run_cli("offers", "--product", "RTX 4090", "--region", "CN-HK-01", "--url", url)
    assert offers.returncode == 0, explain(offers)
    assert "RTX 4090 24GB" in offers.stdout
    assert "CN-HK-01" in offers.stdout
    as_json = parsed(run_cli("offers", "--gpu-num", "2", "--json", "--url", url))
    assert {o["gpuNum"] for o in as_json["offers"]} == {2}
    typo = run_cli("offers", "--product", "RTX 4909", "--url", url)
    assert typo.returncode == 2, explain(typo)
    assert "RTX 4090 24GB" in typo.stderr
    regions = run_cli("regions", "--url", url)
    assert regions.returncode == 0, explain(regions)
    assert "cn-hongkong-1" in regions.stdout
    templates = parsed(run_cli("templates", "--json", "--url", url))
    assert any(t["id"] == "1" for t in templates["templates"])


def test_wait_falls_back_to_polling_when_the_stream_is_refused(simulator, make_service) -> None:
    service = make_service(simulator.base_url, EVENTS_MAX_STREAMS="1")
    instance_id = post(service, "polled")
    wait_for(
        lambda: (
            httpx.get(f"{service.base_url}/api/instances/{instance_id}").json()["status"]
            == "running"
        ),
        30,
        "running",
    )
    # The only stream allowed is taken: the CLI's stream is refused with 503.
    with httpx.stream("GET", f"{service.base_url}/api/events", timeout=30) as taken:
        assert taken.status_code == 200
        wait_for(lambda: service.runtime.events.open_streams == 1, 10, "the stream")
        refused = httpx.get(f"{service.base_url}/api/events", timeout=5)
        assert refused.status_code == 503
        started = time.monotonic()
        stopped = instances(service.base_url, "stop", "polled", "--wait", "--timeout", "30")
        took = time.monotonic() - started
    assert stopped.returncode == 0, explain(stopped)
    assert "stopped" in stopped.stdout
    assert took < 15, took  # no long wait for a stream that will not come
