"""`serve --role api|worker|all` and `--workers N`: on PostgreSQL an API-only process (two
workers on one port) and a worker process share the work; on SQLite the split is refused."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from novita_manager.cli.exit_codes import ServeExitCode
from tests.fixtures.service import free_port, service_env, wait_until_up
from tests.fixtures.waiting import wait_for
from tests.fixtures.webhook_receiver import WebhookReceiver

CREATE = {"name": "split", "productName": "RTX 4090 24GB", "templateId": "1"}


class Serve:
    """`novita-manager serve <args>` as a child process on a free port."""

    def __init__(self, env: dict[str, str], args: list[str], log_path: Path) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, **env, "HOST": "127.0.0.1", "PORT": str(self.port)}
        with log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "novita_manager", "serve", *args],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:  # several processes importing at once start slowly on a loaded machine
            wait_until_up(f"{self.base_url}/health/ready", timeout=90, process=self.process)
        except BaseException:
            self.stop()  # not yet in any fixture's list: stop it here, or it outlives the test
            raise

    def children(self) -> list[int]:
        path = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        return [int(pid) for pid in path.read_text().split()]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


@pytest.fixture
def serve_processes() -> Iterator[list[Serve]]:
    started: list[Serve] = []
    yield started
    for process in reversed(started):
        process.stop()


def processed_rows(base_url: str) -> float:
    text = httpx.get(f"{base_url}/metrics", timeout=5).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("novita_manager_pipeline_rows_processed_total{")
    )


@pytest.mark.postgres
@pytest.mark.timeout(240)  # serve may take over a minute to start on a loaded machine
async def test_api_processes_and_a_worker_share_the_work_on_postgresql(
    simulator, postgres_url, webhook_receiver: WebhookReceiver, tmp_path, serve_processes
) -> None:
    env = service_env(simulator.base_url, postgres_url)
    worker = Serve(env, ["--role", "worker"], tmp_path / "worker.log")
    serve_processes.append(worker)
    api = Serve(env, ["--role", "api", "--workers", "2"], tmp_path / "api.log")
    serve_processes.append(api)
    assert len(api.children()) >= 2  # two uvicorn workers behind one port
    # The worker role is batch work for the scheduler (cli/batch_scheduling.py); the API not.
    assert os.sched_getscheduler(worker.process.pid) == os.SCHED_BATCH
    assert os.sched_getscheduler(api.process.pid) == os.SCHED_OTHER

    # The worker answers only health and metrics; the API process does no background work.
    assert httpx.get(f"{worker.base_url}/api/instances", timeout=5).status_code == 404
    assert httpx.get(f"{worker.base_url}/health/live", timeout=5).status_code == 200

    created = httpx.post(
        f"{api.base_url}/api/instances",
        json={**CREATE, "webhookUrl": webhook_receiver.url},
        timeout=10,
    )
    assert created.status_code == 201, created.text
    instance_id = created.json()["instanceId"]

    def running() -> dict | None:
        view = httpx.get(f"{api.base_url}/api/instances/{instance_id}", timeout=5).json()
        return view if view["status"] == "running" else None

    view = wait_for(running, timeout=30, what="running through the worker")
    assert view["stale"] is False  # the API process judges freshness without its own sync
    [request] = webhook_receiver.wait_for(1, timeout=15)
    event = json.loads(request.body)
    assert event["type"] == "instance.running"
    assert event["data"]["instanceId"] == instance_id
    assert processed_rows(worker.base_url) > 0
    for _ in range(4):  # whichever API worker answers: it processed nothing
        assert processed_rows(api.base_url) == 0


def serve_once(
    tmp_path: Path, database_url: str, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        **service_env(f"http://127.0.0.1:{free_port()}/gpu-instance/openapi", database_url),
        "HOST": "127.0.0.1",
        "PORT": str(free_port()),
        **(env or {}),
    }
    return subprocess.run(
        [sys.executable, "-m", "novita_manager", "serve", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("role", ["api", "worker"])
def test_sqlite_refuses_a_split_role(tmp_path: Path, role: str) -> None:
    started = time.monotonic()
    result = serve_once(tmp_path, f"sqlite+aiosqlite:///{tmp_path}/one.db", "--role", role)
    assert result.returncode == ServeExitCode.CONFIGURATION, result.stderr
    assert f"SERVICE_ROLE={role} needs PostgreSQL" in result.stderr
    assert "SQLite allows one process" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "one.db").exists()  # refused before the database was opened
    assert time.monotonic() - started < 30


@pytest.mark.postgres
def test_workers_need_the_api_or_all_role(tmp_path: Path, postgres_url: str) -> None:
    result = serve_once(tmp_path, postgres_url, "--role", "worker", "--workers", "2")
    assert result.returncode == ServeExitCode.CONFIGURATION, result.stderr
    assert "--workers 2 needs --role api or all" in result.stderr


def test_sqlite_refuses_several_pipeline_processes(tmp_path: Path) -> None:
    result = serve_once(
        tmp_path, f"sqlite+aiosqlite:///{tmp_path}/one.db", env={"PIPELINE_PROCESSES": "2"}
    )
    assert result.returncode == ServeExitCode.CONFIGURATION, result.stderr
    assert "PIPELINE_PROCESSES=2 needs PostgreSQL" in result.stderr
    assert "Traceback" not in result.stderr
