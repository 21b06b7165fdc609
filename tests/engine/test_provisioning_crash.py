"""SIGKILL the service at several points of provisioning; every request still ends with exactly
one Novita instance and one `instance.running` notification at least.

Run under two opposite readings of Novita's API (issue 14): `adverse` (pageNum 0 first with a
page-size cap of 20, reduced list items, spanning product ids, capacity by message, transient
statusError, strict names) and `lenient`. Under `adverse` the old search after an unknown create
(from pageNum 1) saw an empty account and created again.
"""

from __future__ import annotations

import json
import random
import time

import httpx
import pytest

from tests.fixtures.waiting import wait_for

# Five service starts (one and four restarts after SIGKILL): about 12 s on a quiet machine,
# 30 s beside three busy loops; a full run beside other benchmarks (load average 7-10) went past
# the default 120 s twice in this round, with the same code passing alone.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


@pytest.mark.parametrize("simulator_profile", ["adverse", "lenient"], indirect=True)
def test_sigkill_during_provisioning_never_duplicates(
    simulator, make_service_process, webhook_receiver
) -> None:
    # Slow creates so that kills land while creates are in flight, and a few commit-then-fail.
    simulator.control.set_faults(
        [
            {"endpoint": "POST /gpu/instance/create", "kind": "delay", "seconds": 0.3, "rate": 0.5},
            {
                "endpoint": "POST /gpu/instance/create",
                "kind": "commit_then_fail",
                "then": "drop",
                "rate": 0.15,
            },
        ]
    )
    service = make_service_process(simulator.base_url, WEBHOOK_URL=webhook_receiver.url).start()
    requests = 12
    ids = []
    for index in range(requests):
        response = httpx.post(
            f"{service.base_url}/api/instances",
            json={"name": f"crash-{index}", "productName": "RTX 4090 24GB", "templateId": "1"},
            timeout=10,
        )
        assert response.status_code == 201, response.text
        ids.append(response.json()["instanceId"])

    rng = random.Random(7)
    for _ in range(4):  # kill at several points: creating, starting, waiting, notifying
        time.sleep(rng.uniform(0.1, 0.7))
        service.kill()
        service.start()

    def all_running() -> bool:
        views = [httpx.get(f"{service.base_url}/api/instances/{i}", timeout=5).json() for i in ids]
        return all(view["status"] == "running" for view in views)

    try:
        wait_for(all_running, timeout=180, what="every instance running after the crashes")
    except AssertionError:
        views = [httpx.get(f"{service.base_url}/api/instances/{i}").json() for i in ids]
        print([(v["status"], v["novitaStatus"], v["lastError"]) for v in views])
        print(service.log_path.read_text()[-20000:])
        raise
    upstream = [item for item in simulator.control.instances() if not item["removed"]]
    markers = [
        next(env["value"] for env in item["envs"] if env["key"] == "NOVITA_MANAGER_ID")
        for item in upstream
    ]
    assert sorted(markers) == sorted(ids), "exactly one Novita instance per request"

    webhook_receiver.wait_for(requests, timeout=30)
    delivered = {
        json.loads(r.body)["data"]["instanceId"]
        for r in webhook_receiver.requests()
        if json.loads(r.body)["type"] == "instance.running"
    }
    assert delivered == set(ids)
