"""`serve` (role all) as several processes: the API, and the pipelines in child processes.

Real processes on SQLite (cli/pipeline_worker.py): the child does the background work and holds
the file; the API's /metrics shows the child's series; SIGTERM stops both; `kill -9` of serve
leaves no process behind (nor its `--workers` API processes) and a restart continues; a child
that dies stops serve. On PostgreSQL, PIPELINE_PROCESSES children share the work.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from tests.cli.test_serve_roles import CREATE, Serve, processed_rows
from tests.fixtures.service import service_env
from tests.fixtures.waiting import wait_for
from tests.fixtures.webhook_receiver import WebhookReceiver


@pytest.fixture
def serves() -> Iterator[list[Serve]]:
    started: list[Serve] = []
    yield started
    for process in reversed(started):
        process.stop()


def descendants(pid: int) -> list[int]:
    found = [pid]
    for current in found:
        for task in Path(f"/proc/{current}/task").iterdir():
            found.extend(int(child) for child in (task / "children").read_text().split())
    return found[1:]


def gone(pid: int) -> bool:
    """Exited (a zombie waiting for its reaper counts: it runs nothing and holds no lock)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state == "Z"


def create(base_url: str, name: str, webhook_url: str | None = None) -> str:
    body = {**CREATE, "name": name, **({"webhookUrl": webhook_url} if webhook_url else {})}
    response = httpx.post(f"{base_url}/api/instances", json=body, timeout=10)
    assert response.status_code == 201, response.text
    return str(response.json()["instanceId"])


def status(base_url: str, instance_id: str) -> str:
    view = httpx.get(f"{base_url}/api/instances/{instance_id}", timeout=5).json()
    return str(view["status"])


@pytest.mark.timeout(240)  # serve may take over a minute to start on a loaded machine
def test_the_child_runs_the_pipelines_and_stops_with_serve(
    simulator, webhook_receiver: WebhookReceiver, tmp_path: Path, serves
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/one.db"
    env = service_env(simulator.base_url, url, log_level="info")
    api = Serve(env, [], tmp_path / "serve.log")
    serves.append(api)
    [worker] = wait_for(lambda: api.children(), what="the pipeline worker")
    lock = tmp_path / "one.db.lock"
    wait_for(lambda: lock.read_text().strip() == str(worker), what="the child holding the file")
    # The pipelines are batch work for the scheduler; the API answers as an ordinary process.
    assert os.sched_getscheduler(worker) == os.SCHED_BATCH
    assert os.sched_getscheduler(api.process.pid) == os.SCHED_OTHER

    instance_id = create(api.base_url, "split-sqlite", webhook_receiver.url)
    wait_for(lambda: status(api.base_url, instance_id) == "running", timeout=30, what="running")
    [request] = webhook_receiver.wait_for(1, timeout=15)
    assert json.loads(request.body)["data"]["instanceId"] == instance_id
    # One scrape of the API port shows the work its child did.
    assert processed_rows(api.base_url) > 0

    api.process.send_signal(signal.SIGTERM)
    assert api.process.wait(timeout=40) == 0
    wait_for(lambda: gone(worker), timeout=10, what="the child to stop")
    assert lock.read_text() == ""  # released by a clean stop
    log = (tmp_path / "serve.log").read_text()
    assert "pipeline_stopped" in log  # the child drained its pipelines
    assert "pipeline_worker_exited" not in log


@pytest.mark.timeout(240)  # serve may take over a minute to start on a loaded machine
def test_kill_9_leaves_no_process_and_a_restart_continues(
    simulator, tmp_path: Path, serves
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/one.db"
    env = service_env(simulator.base_url, url)
    first = Serve(env, ["--workers", "2"], tmp_path / "first.log")
    serves.append(first)
    # Two API processes and the pipeline worker (uvicorn may add its resource tracker).
    family = wait_for(lambda: len(descendants(first.process.pid)) >= 3 and descendants(
        first.process.pid), what="API processes and the worker")  # fmt: skip
    simulator.control.set_faults([{"endpoint": "*", "kind": "delay", "seconds": 1.0}])
    instance_id = create(first.base_url, "killed")
    first.process.send_signal(signal.SIGKILL)
    first.process.wait(timeout=10)
    for pid in family:
        wait_for(functools.partial(gone, pid), timeout=10, what=f"process {pid} to die")
    simulator.control.clear_faults()

    second = Serve(env, [], tmp_path / "second.log")  # the file is free again
    serves.append(second)
    wait_for(lambda: status(second.base_url, instance_id) == "running", timeout=40, what="running")


@pytest.mark.timeout(240)  # serve may take over a minute to start on a loaded machine
def test_a_child_that_dies_stops_serve(simulator, tmp_path: Path, serves) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/one.db"
    api = Serve(service_env(simulator.base_url, url), [], tmp_path / "serve.log")
    serves.append(api)
    [worker] = wait_for(lambda: api.children(), what="the pipeline worker")
    os.kill(worker, signal.SIGKILL)
    try:
        code = api.process.wait(timeout=40)
    except subprocess.TimeoutExpired:
        pytest.fail("serve kept answering without its pipelines")
    assert code == 1
    assert "pipeline_worker_exited" in (tmp_path / "serve.log").read_text()


OWNERS = {
    "rows": "SELECT DISTINCT lock_owner FROM instances WHERE lock_owner IS NOT NULL",
    "service": "SELECT DISTINCT owner FROM service_leases WHERE owner IS NOT NULL",
}


def lease_owner_pids(postgres_url: str, which: str = "rows") -> set[int]:
    """The pids in the lease owners (`host:pid:nonce`) of the instance rows leased right now
    (`rows`), or of the service leases (`service`: the status sync, the scheduled tasks)."""

    async def read() -> set[int]:
        connection = await asyncpg.connect(postgres_url.replace("+asyncpg", ""))
        try:
            rows = await connection.fetch(OWNERS[which])
        finally:
            await connection.close()
        return {int(row[0].split(":")[1]) for row in rows}

    return asyncio.run(read())


@pytest.mark.postgres
@pytest.mark.timeout(240)  # serve may take over a minute to start on a loaded machine
def test_on_postgresql_several_children_share_the_work(
    simulator, webhook_receiver: WebhookReceiver, postgres_url: str, tmp_path: Path, serves
) -> None:
    """PIPELINE_PROCESSES=2: two children claim the rows between them (each row once), the
    API wakes both and merges both's metrics, and one dying stops serve."""
    env = service_env(simulator.base_url, postgres_url, pipeline_processes="2",
                      pipeline_workers="2")  # fmt: skip
    api = Serve(env, [], tmp_path / "serve.log")
    serves.append(api)
    children = wait_for(lambda: len(api.children()) == 2 and api.children(), what="2 children")
    # The second is spare work: a lower share of a contended core (cli/batch_scheduling.py).
    nice = {os.getpriority(os.PRIO_PROCESS, child) for child in children}
    assert nice == {os.getpriority(os.PRIO_PROCESS, 0), os.getpriority(os.PRIO_PROCESS, 0) + 10}
    # Slow upstream calls keep rows leased for a while, and two workers a child leave rows for
    # the other child: the owners of the leases show which processes work.
    simulator.control.set_faults([{"endpoint": "*", "kind": "delay", "seconds": 0.3}])
    ids = [create(api.base_url, f"two-{i}", webhook_receiver.url) for i in range(10)]
    owners: set[int] = set()

    def all_running() -> bool:
        owners.update(lease_owner_pids(postgres_url))
        return all(status(api.base_url, instance_id) == "running" for instance_id in ids)

    wait_for(all_running, timeout=120, every=0.2, what="every instance running")
    simulator.control.clear_faults()
    assert owners == set(children)  # both children claimed rows, and nothing else did
    # The spare child (nice +10) takes only rows that waited, and leaves the status sync to the
    # first one.
    first = next(c for c in children if os.getpriority(os.PRIO_PROCESS, c) == min(nice))
    assert lease_owner_pids(postgres_url, "service") == {first}
    delivered = webhook_receiver.wait_for(len(ids), timeout=30)
    assert sorted(json.loads(r.body)["data"]["instanceId"] for r in delivered) == sorted(ids)
    assert simulator.control.stats()["instancesCreated"] == len(ids)  # each created once
    assert processed_rows(api.base_url) >= 2 * len(ids)  # both children's series, summed

    os.kill(children[0], signal.SIGKILL)
    assert api.process.wait(timeout=40) == 1
    assert "pipeline_worker_exited" in (tmp_path / "serve.log").read_text()
    wait_for(lambda: gone(children[1]), timeout=40, what="the other child to stop")
