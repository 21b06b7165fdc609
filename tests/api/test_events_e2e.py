"""GET /api/events and GET /api/instances/{id}/events against a real service and simulator."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from novita_manager.sdk import ApiResponseError, CreateInstance, ManagerClient
from tests.api.event_streams import EventCollector
from tests.api.test_instances_e2e import create, wait_status
from tests.fixtures.waiting import wait_for
from tests.fixtures.webhook_receiver import WebhookReceiver


def test_the_stream_carries_status_changes_and_the_webhooks_bodies(
    simulator, make_service, webhook_receiver: WebhookReceiver
) -> None:
    service = make_service(simulator.base_url, WEBHOOK_URL=webhook_receiver.url)
    everything = EventCollector(service.base_url).start().wait_ready()
    assert service.runtime.events.open_streams == 1
    instance_id = create(service, name="streamed").json()["instanceId"]
    other_id = create(service, name="other").json()["instanceId"]
    only_other = EventCollector(service.base_url, instance_id=other_id, last_event_id=0).start()

    running = everything.wait_for_type(instance_id, "instance.running")
    statuses = [e.data["status"] for e in everything.of(instance_id) if e.type == "instance.status"]
    assert statuses[0] == "creating"
    assert statuses[-1] == "running"
    webhook = next(
        body
        for body in (json.loads(r.body) for r in webhook_receiver.wait_for(2))
        if body["data"]["instanceId"] == instance_id
    )
    assert running.body == webhook  # the same body as the webhook, byte for byte in JSON
    ids = [e.id for e in everything.events]
    assert ids == sorted(set(ids))

    # The instance filter, replayed from the start of the history (lastEventId=0).
    only_other.wait_for_type(other_id, "instance.running")
    assert {e.data["instanceId"] for e in only_other.events} == {other_id}

    # The history endpoint has the same events, ids and bodies, oldest first, paged.
    with ManagerClient(service.base_url) as client:
        first = client.instance_events(instance_id, limit=2)
        rest = client.instance_events(instance_id, after=first.nextAfter or 0, limit=1000)
    history = [*first.events, *rest.events]
    streamed = everything.of(instance_id)
    assert [(e.id, e.type, e.data) for e in history][: len(streamed)] == [
        (e.id, e.type, e.data) for e in streamed
    ]
    everything.stop()
    only_other.stop()


def test_last_event_id_replays_exactly_what_followed(simulator, make_service) -> None:
    service = make_service(simulator.base_url)
    instance_id = create(service, name="replayed").json()["instanceId"]
    wait_status(service, instance_id, "running")
    with ManagerClient(service.base_url) as client:
        history = client.instance_events(instance_id).events
    assert len(history) >= 4
    resumed = EventCollector(
        service.base_url, instance_id=instance_id, last_event_id=history[1].id
    ).start()
    wait_for(lambda: len(resumed.events) >= len(history) - 2, 10, "the replay")
    assert [e.id for e in resumed.events] == [e.id for e in history[2:]]
    resumed.stop()


def test_unknown_instance_and_the_stream_cap(simulator, make_service) -> None:
    service = make_service(
        simulator.base_url, EVENTS_MAX_STREAMS="1", EVENTS_HEARTBEAT_INTERVAL="0.2"
    )
    for bad in ({"lastEventId": "-1"}, {"lastEventId": "x"}, {"instanceId": "i" * 101}):
        refused = httpx.get(f"{service.base_url}/api/events", params=bad)
        assert refused.status_code == 400, bad
        assert refused.json()["error"]["code"] == "VALIDATION_ERROR"
    missing = httpx.get(f"{service.base_url}/api/events", params={"instanceId": "nope"})
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "INSTANCE_NOT_FOUND"

    with httpx.stream("GET", f"{service.base_url}/api/events", timeout=10) as stream:
        assert stream.status_code == 200
        assert stream.headers["content-type"].startswith("text/event-stream")
        lines = stream.iter_lines()
        seen = [next(lines) for _ in range(8)]  # preamble, position, then heartbeats
        assert "retry: 2000" in seen
        assert ": heartbeat" in seen
        refused = httpx.get(f"{service.base_url}/api/events", timeout=5)
        assert refused.status_code == 503
        assert refused.json()["error"]["details"] == {"reason": "event_streams"}
        assert refused.headers["Retry-After"] == "5"
        metrics = httpx.get(f"{service.base_url}/metrics").text
        assert "novita_manager_event_streams_open 1.0" in metrics
    # A closed stream frees its place at once (the disconnect is noticed while idle).
    wait_for(lambda: service.runtime.events.open_streams == 0, 10, "the stream to close")
    with httpx.stream("GET", f"{service.base_url}/api/events", timeout=10) as again:
        assert again.status_code == 200


def test_a_shutdown_closes_open_streams_at_once(simulator, make_service) -> None:
    """A stream never ends by itself; the server closes it when it shuts down instead of
    waiting out its graceful-shutdown timeout (5 s in the fixture)."""
    service = make_service(simulator.base_url)
    collector = EventCollector(service.base_url, reconnect_for=0).start().wait_ready()
    started = time.monotonic()
    service.stop()
    took = time.monotonic() - started
    assert took < 3, took
    wait_for(lambda: collector.error is not None, 10, "the client to see the stream end")


def test_the_stream_needs_the_api_key_when_keys_are_set(simulator, make_service) -> None:
    service = make_service(simulator.base_url, API_KEYS="k-events")
    with ManagerClient(service.base_url) as anonymous, pytest.raises(ApiResponseError) as refused:
        next(iter(anonymous.events()))
    assert refused.value.status_code == 401
    keyed = EventCollector(service.base_url, api_key="k-events").start().wait_ready()
    with ManagerClient(service.base_url, api_key="k-events") as client:
        created = client.create_instance(CreateInstance("keyed", "RTX 4090 24GB", "1"))
    keyed.wait_for_type(created.instanceId, "instance.running")
    keyed.stop()


def test_every_webhook_type_is_on_the_stream_with_its_body(
    simulator, make_service, webhook_receiver: WebhookReceiver
) -> None:
    """Types added later (issue 17's `instance.expiring`, `reason` on `instance.stopped`) come
    from the outbox like the others: the stream needs no list of types."""
    service = make_service(
        simulator.base_url,
        WEBHOOK_URL=webhook_receiver.url,
        INSTANCE_POLL_INTERVAL="0.2",
        EXPIRY_WARNING_LEAD="1",
    )
    collector = EventCollector(service.base_url).start().wait_ready()
    instance_id = create(service, name="expiring", autoStopAfter="2s").json()["instanceId"]
    stopped = collector.wait_for_type(instance_id, "instance.stopped")
    expiring = collector.wait_for_type(instance_id, "instance.expiring")
    assert expiring.id < stopped.id
    assert stopped.data["reason"] == "auto-stop"
    assert expiring.data["action"] == "stop"
    sent = {
        body["type"]: body
        for body in (json.loads(r.body) for r in webhook_receiver.wait_for(3))
        if body["data"]["instanceId"] == instance_id
    }
    assert expiring.body == sent["instance.expiring"]
    assert stopped.body == wait_for(
        lambda: next(
            (
                b
                for b in (json.loads(r.body) for r in webhook_receiver.requests())
                if b["type"] == "instance.stopped" and b["data"]["instanceId"] == instance_id
            ),
            None,
        ),
        10,
        "the stopped webhook",
    )
    collector.stop()
