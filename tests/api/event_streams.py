"""A client of GET /api/events in a background thread, for the end-to-end tests."""

from __future__ import annotations

import threading
from typing import Any

from novita_manager.sdk import ManagerClient, ServiceError, StreamEvent
from tests.fixtures.waiting import wait_for


class EventCollector:
    """Follows the stream (reconnecting with Last-Event-ID, as the SDK does) and keeps every
    event received; `stop()` ends it at the next event or reconnect."""

    def __init__(
        self,
        base_url: str,
        *,
        instance_id: str | None = None,
        last_event_id: int | None = None,
        reconnect_for: float = 60.0,
        api_key: str | None = None,
    ) -> None:
        self.client = ManagerClient(base_url, api_key=api_key, timeout=10)
        self.events: list[StreamEvent] = []
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self.ready = threading.Event()  # set up: every later event will be received
        self._args: dict[str, Any] = {
            "instance_id": instance_id,
            "last_event_id": last_event_id,
            "reconnect_for": reconnect_for,
            "on_position": lambda _position: self.ready.set(),
        }
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> EventCollector:
        self._thread.start()
        return self

    def wait_ready(self, timeout: float = 10) -> EventCollector:
        assert self.ready.wait(timeout), "the stream was not set up"
        return self

    def _run(self) -> None:
        try:
            for event in self.client.events(**self._args):
                self.events.append(event)
                if self._stop.is_set():
                    return
        except (ServiceError, RuntimeError) as error:  # RuntimeError: closed by stop()
            if not self._stop.is_set():
                self.error = error

    def of(self, instance_id: str) -> list[StreamEvent]:
        return [e for e in self.events if e.data.get("instanceId") == instance_id]

    def wait_for_type(self, instance_id: str, kind: str, timeout: float = 30) -> StreamEvent:
        found: StreamEvent = wait_for(
            lambda: next((e for e in self.of(instance_id) if e.type == kind), None),
            timeout,
            f"{kind} of {instance_id} on the stream",
        )
        return found

    def stop(self) -> None:
        self._stop.set()
        self.client.close()
