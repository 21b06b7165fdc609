"""SIGKILL the service in the middle of spot recoveries (issue 16): every reclaimed instance
still runs again, recovered once, and the simulator never saw two live Novita instances for
one managed instance (its live record is taken at every create and delete).

Creates and deletes are slowed and some creates commit upstream and then fail (the answer is
lost), so kills land between a recreate's delete and its create, and between a create and its
recording: the create's exactly-once guard (marker search) must adopt, not create again.
"""

from __future__ import annotations

import json
import random
import time

import httpx
import pytest

from tests.fixtures.waiting import wait_for

pytestmark = pytest.mark.slow

POLICIES = ["restart", "migrate", "recreate", "recreate", "recreate", "migrate"]


def test_sigkill_during_recoveries_never_duplicates_and_all_recover(
    simulator, make_service_process, webhook_receiver, database_url
) -> None:
    service = make_service_process(
        simulator.base_url, database_url, WEBHOOK_URL=webhook_receiver.url, RECOVERY_BACKOFF="0"
    ).start()
    ids = []
    for index, policy in enumerate(POLICIES):
        response = httpx.post(
            f"{service.base_url}/api/instances",
            json={
                "name": f"spot-{index}",
                "productName": "RTX 4090 24GB",
                "templateId": "1",
                "onReclaim": policy,
                "regions": ["CN-HK-01", "AS-SGP-02"],
            },
            timeout=10,
        )
        assert response.status_code == 201, response.text
        ids.append(response.json()["instanceId"])

    def views() -> list[dict]:
        return [httpx.get(f"{service.base_url}/api/instances/{i}", timeout=5).json() for i in ids]

    def all_running() -> list[dict] | None:
        vs = views()
        return vs if all(v["status"] == "running" for v in vs) else None

    first = wait_for(all_running, 60, "every instance running")
    simulator.control.set_faults(
        [
            {"endpoint": "POST /gpu/instance/create", "kind": "delay", "seconds": 0.3, "rate": 0.5},
            {"endpoint": "POST /gpu/instance/delete", "kind": "delay", "seconds": 0.2, "rate": 0.5},
            {
                "endpoint": "POST /gpu/instance/create",
                "kind": "commit_then_fail",
                "then": "drop",
                "rate": 0.3,
            },
        ]
    )
    for view in first:
        simulator.control.reclaim(view["novitaInstanceId"], lead_time=0)

    rng = random.Random(16)
    at_kills: list[list[str]] = []
    for _ in range(4):  # kill while reclaims are noticed, recoveries sent, creates in flight
        time.sleep(rng.uniform(0.2, 0.8))
        at_kills.append([v["status"] for v in views()])
        service.kill()
        service.start()
    # the kills did land in the middle of recoveries
    assert any(status in ("creating", "starting") for seen in at_kills for status in seen), at_kills

    def all_recovered() -> list[dict] | None:
        vs = views()
        done = all(v["status"] == "running" and v["recoveries"] == 1 for v in vs)
        return vs if done else None

    try:
        final = wait_for(all_recovered, timeout=90, what="every instance recovered")
    except AssertionError:
        print([(v["status"], v["recoveries"], v["lastError"]) for v in views()])
        print(service.log_path.read_text()[-20000:])
        raise
    record = simulator.control.live()
    assert record["maxLive"] == dict.fromkeys(ids, 1), "two live instances for one request"
    assert record["live"] == dict.fromkeys(ids, 1)
    for view, before, policy in zip(final, first, POLICIES, strict=True):
        same = view["novitaInstanceId"] == before["novitaInstanceId"]
        assert same is (policy != "recreate"), (policy, view, before)

    def recovered_hooks() -> set[str] | None:
        bodies = [json.loads(r.body) for r in webhook_receiver.requests()]
        got = {b["data"]["instanceId"] for b in bodies if b["type"] == "instance.recovered"}
        return got if got == set(ids) else None

    wait_for(recovered_hooks, 30, "instance.recovered for every instance")
