"""The event stream across a SIGKILL of the service and across replicas: nothing lost, nothing
repeated, because every event comes from the database and the client resumes by id."""

from __future__ import annotations

import httpx
import pytest

from novita_manager.sdk import ManagerClient
from tests.api.event_streams import EventCollector
from tests.fixtures.waiting import wait_for


def post_instance(base_url: str, name: str) -> str:
    body = {"name": name, "productName": "RTX 4090 24GB", "templateId": "1"}
    response = httpx.post(f"{base_url}/api/instances", json=body, timeout=15)
    assert response.status_code == 201, response.text
    instance_id: str = response.json()["instanceId"]
    return instance_id


def all_event_ids(base_url: str, *instance_ids: str) -> list[int]:
    with ManagerClient(base_url) as client:
        ids = [e.id for i in instance_ids for e in client.instance_events(i, limit=1000).events]
    return sorted(ids)


@pytest.mark.slow
def test_the_stream_resumes_after_a_sigkill_without_losing_or_repeating(
    simulator, make_service_process
) -> None:
    service = make_service_process(simulator.base_url, EVENTS_POLL_INTERVAL="0.05").start()
    collector = EventCollector(service.base_url, last_event_id=0).start()
    first = post_instance(service.base_url, "before-kill")
    collector.wait_for_type(first, "instance.running")
    before = len(collector.events)

    service.kill()
    service.start()  # same port and database; the client reconnects with Last-Event-ID
    second = post_instance(service.base_url, "after-kill")
    httpx.post(f"{service.base_url}/api/instances/{first}/stop", timeout=15)
    collector.wait_for_type(second, "instance.running")
    collector.wait_for_type(first, "instance.stopped")

    expected = all_event_ids(service.base_url, first, second)
    wait_for(lambda: len(collector.events) >= len(expected), 10, "every event on the stream")
    received = [e.id for e in collector.events]
    assert received == expected  # in order, none lost, none twice
    assert 0 < before < len(received)  # some before the kill, some after
    assert collector.error is None
    collector.stop()


@pytest.mark.slow
@pytest.mark.postgres
def test_one_replica_streams_what_another_writes(
    simulator, make_service_process, postgres_url: str
) -> None:
    fast = {"EVENTS_POLL_INTERVAL": "0.05"}
    writer = make_service_process(simulator.base_url, postgres_url, **fast).start()
    reader = make_service_process(
        simulator.base_url, postgres_url, SERVICE_ROLE="api", **fast
    ).start()
    collector = EventCollector(reader.base_url).start()
    wait_for(
        lambda: (
            "novita_manager_event_streams_open 1.0" in httpx.get(f"{reader.base_url}/metrics").text
        ),
        10,
        "the stream to open on the reader",
    )
    instance_id = post_instance(writer.base_url, "cross-replica")
    running = collector.wait_for_type(instance_id, "instance.running")
    assert running.data["instance"]["status"] == "running"

    # The reader is killed and restarted: the stream resumes from the shared history.
    reader.kill()
    httpx.post(f"{writer.base_url}/api/instances/{instance_id}/stop", timeout=15)
    reader.start()
    collector.wait_for_type(instance_id, "instance.stopped")
    received = [e.id for e in collector.of(instance_id)]
    assert received == all_event_ids(writer.base_url, instance_id)
    collector.stop()
