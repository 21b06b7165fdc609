"""`/ui/events`: the dashboard's event stream behind the session cookie (a real service)."""

from __future__ import annotations

import threading
import time

import httpx

from tests.dashboard.client import API_KEY, logged_in
from tests.fixtures.waiting import wait_for

API = {"Authorization": f"Bearer {API_KEY}"}
CREATE = {"name": "live-1", "productName": "RTX 4090 24GB", "templateId": "1"}


class StreamReader:
    """Reads one SSE response in a thread: every `id:`/`event:` pair, until the stream ends."""

    def __init__(self, client: httpx.Client, url: str, headers: dict[str, str] | None = None):
        self.events: list[tuple[int, str]] = []
        self.opened = threading.Event()
        self.ended = threading.Event()
        self.status: int | None = None
        self._thread = threading.Thread(
            target=self._run, args=(client, url, headers or {}), daemon=True
        )
        self._thread.start()
        assert self.opened.wait(10), "the stream did not open"

    def _run(self, client: httpx.Client, url: str, headers: dict[str, str]) -> None:
        event_id: int | None = None
        try:
            with client.stream("GET", url, headers=headers, timeout=30) as response:
                self.status = response.status_code
                self.opened.set()
                for line in response.iter_lines():
                    if line.startswith("id: "):
                        event_id = int(line[4:])
                    elif line.startswith("event: ") and event_id is not None:
                        self.events.append((event_id, line[7:]))
        except httpx.HTTPError:
            pass
        finally:
            self.opened.set()
            self.ended.set()

    def types(self) -> list[str]:
        return [kind for _, kind in self.events]


def test_the_page_stream_carries_the_events_and_resumes_after_an_id(make_service, simulator):
    service = make_service(simulator.base_url, API_KEYS=API_KEY)
    with logged_in(service.base_url) as client:
        stream = StreamReader(client, "/ui/events")
        assert stream.status == 200
        created = httpx.post(f"{service.base_url}/api/instances", json=CREATE, headers=API)
        assert created.status_code == 201
        wait_for(lambda: "instance.running" in stream.types(), what="instance.running")
        assert stream.types()[0] == "instance.status"
        ids = [event_id for event_id, _ in stream.events]
        assert ids == sorted(set(ids)), "events repeated or out of order"
        # A reconnection with Last-Event-ID replays exactly what followed it.
        first = ids[0]
        again = StreamReader(client, "/ui/events?after=0", {"Last-Event-ID": str(first)})
        wait_for(lambda: len(again.events) >= len(ids) - 1, what="the replay")
        assert again.events[: len(ids) - 1] == stream.events[1:]
        # `after` (the page's render point) is used without Last-Event-ID.
        page = StreamReader(client, f"/ui/events?after={first}")
        wait_for(lambda: len(page.events) >= len(ids) - 1, what="the replay after")
        assert page.events[0] == stream.events[1]


def test_the_page_stream_needs_the_session(make_service, simulator):
    service = make_service(simulator.base_url, API_KEYS=API_KEY)
    with httpx.Client(base_url=service.base_url, timeout=10) as client:
        assert client.get("/ui/events").status_code == 401
        # A bearer key is for /api; the page stream takes the session cookie only.
        assert client.get("/ui/events", headers=API).status_code == 401
    with logged_in(service.base_url) as client:
        assert client.get("/ui/events?instanceId=nope").status_code == 404


def test_an_open_page_stream_does_not_hold_the_shutdown(make_service, simulator):
    service = make_service(simulator.base_url)
    with httpx.Client(base_url=service.base_url, timeout=10) as client:
        stream = StreamReader(client, "/ui/events")
        assert stream.status == 200
        started = time.monotonic()
        service.stop()
        took = time.monotonic() - started
        assert stream.ended.wait(5), "the stream was not closed"
    assert took < 3, f"shutdown waited {took:.1f} s for an open dashboard stream"


def test_the_page_stream_counts_against_the_stream_cap(make_service, simulator):
    service = make_service(simulator.base_url, EVENTS_MAX_STREAMS="1")
    with httpx.Client(base_url=service.base_url, timeout=10) as client:
        first = StreamReader(client, "/ui/events")
        assert first.status == 200
        refused = client.get("/ui/events")
        assert refused.status_code == 503
        assert refused.headers["Retry-After"] == "5"
        assert client.get("/api/events").status_code == 503  # one cap for both paths
        service.stop()
        assert first.ended.wait(5)
