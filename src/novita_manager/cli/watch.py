"""Follow one instance until it reaches a status, printing every change as it happens.

Used by `instances create|start|stop|delete --wait` and by the demo. Changes come from the live
event stream (`GET /api/events?instanceId=`): the instance is read once when the stream is set
up and again at each event, so waiting costs no request per second. If the stream cannot be
used (an older service, the stream cap, a proxy that refuses it), the wait falls back to
polling `GET /api/instances/{id}` every `interval`.

An operation is recorded before the background pipeline moves the instance, so right after
`start` a failed instance may still read `failed`: a status equal to the one before the
operation only counts once the instance has left it (or `failedAt` changed), never on the first
reading.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass
from typing import Literal

from rich.console import Console
from rich.markup import escape

from novita_manager.cli.output import styled_status
from novita_manager.sdk import ApiResponseError, InstanceView, ManagerClient, ServiceError

Outcome = Literal["reached", "failed", "timeout"]
SETTLED = frozenset({"running", "failed", "stopped", "deleted"})
STREAM_SETUP = 3.0  # seconds to wait for the stream before reading the instance anyway
STREAM_RECONNECT_FOR = 10.0  # a stream down longer than this: poll instead


@dataclass(frozen=True)
class WatchResult:
    outcome: Outcome
    view: InstanceView | None
    elapsed: float


def _progress_line(elapsed: float, status: str | None, novita_status: str | None) -> str:
    return (
        f"  [dim]{elapsed:6.1f}s[/]  {styled_status(status, 9)}"
        f"  novitaStatus: {escape(novita_status or '-')}"
    )


def _decide(
    view: InstanceView, target: str, before: InstanceView | None, left_before: bool
) -> Outcome | None:
    status = view.status
    if not left_before:  # still reads as before the operation: only a new failure counts
        assert before is not None
        if status == "failed" and view.failedAt != before.failedAt:
            return "failed"
        return None
    if status == target:
        return "reached"
    return "failed" if status in SETTLED else None


class ChangeFeed:
    """The instance's events, read by a background thread: `changed(timeout)` says whether one
    arrived. `live` while the stream is connected (the waiter polls otherwise); `failed` once
    it is given up: at the first refusal (never connected: an older service, the stream cap),
    or after STREAM_RECONNECT_FOR seconds without a connection."""

    def __init__(self, client: ManagerClient, instance_id: str) -> None:
        self._client = client.copy()
        self._instance_id = instance_id
        self._events: queue.Queue[None] = queue.Queue()
        self.ready = threading.Event()  # set up once: no later change is missed
        self.live = threading.Event()  # connected now
        self.failed = threading.Event()
        self._closed = False
        self._position: int | None = None
        self._thread = threading.Thread(target=self._run, daemon=True, name="event-stream")

    def start(self) -> ChangeFeed:
        self._thread.start()
        return self

    def _connected(self, position: int) -> None:
        if self._position is None:
            self._position = position
        self.ready.set()
        self.live.set()

    def _run(self) -> None:
        down_since: float | None = None
        while not self._closed:
            try:
                for event in self._client.events(
                    instance_id=self._instance_id,
                    last_event_id=self._position,
                    reconnect_for=0,
                    on_position=self._connected,
                ):
                    self._position = event.id
                    self._events.put(None)
            except (ServiceError, RuntimeError):  # RuntimeError: closed by close()
                pass
            if self.live.is_set():
                down_since = None
            self.live.clear()
            self._events.put(None)  # wake the waiter: it polls while the stream is down
            now = time.monotonic()
            down_since = down_since or now
            if not self.ready.is_set() or now - down_since > STREAM_RECONNECT_FOR:
                break
            time.sleep(0.5)
        self.failed.set()
        self._events.put(None)

    def changed(self, timeout: float) -> bool:
        """True when at least one event arrived within `timeout` seconds (all are taken)."""
        try:
            self._events.get(timeout=max(0.0, timeout))
        except queue.Empty:
            return False
        while not self._events.empty():
            self._events.get_nowait()
        return True

    def close(self) -> None:
        self._closed = True
        self._client.close()


def watch_instance(
    client: ManagerClient,
    instance_id: str,
    target: str,
    console: Console,
    timeout: float = 600.0,
    interval: float = 1.0,
    before: InstanceView | None = None,
    initial_status: str | None = None,
    use_stream: bool = True,
) -> WatchResult:
    """Follow the instance until `target` (or another settled status once it moved); never
    raises for 429/5xx answers, which are retried until the timeout. `initial_status` (what
    the operation's answer said, e.g. `creating`) is shown first, however fast the change."""
    started = time.monotonic()
    last_seen: tuple[str | None, str | None] | None = None
    if initial_status is not None:
        last_seen = (initial_status, None)
        console.print(_progress_line(0.0, initial_status, None))
    left_before = before is None
    view: InstanceView | None = None
    feed = ChangeFeed(client, instance_id).start() if use_stream else None
    if feed is not None:
        feed.ready.wait(min(STREAM_SETUP, timeout))
    try:
        with console.status(f"waiting for {target}…", spinner="dots") as spinner:
            while True:
                elapsed = time.monotonic() - started
                try:
                    view = client.get_instance(instance_id)
                except ApiResponseError as error:
                    if error.status_code != 429 and error.status_code < 500:
                        raise
                    spinner.update(f"service answered {error.status_code}; retrying…")
                else:
                    seen = (view.status, view.novitaStatus)
                    if seen != last_seen:
                        console.print(_progress_line(elapsed, *seen))
                        last_seen = seen
                    if before is None or view.status != before.status:
                        left_before = True
                    outcome = _decide(view, target, before, left_before)
                    if outcome is not None:
                        return WatchResult(outcome, view, elapsed)
                    spinner.update(
                        f"{escape(view.status)} → {target} "
                        f"[dim]({elapsed:.0f}s, novitaStatus {escape(str(seen[1] or '-'))})[/]"
                    )
                if _wait_for_change(feed, started, timeout, interval):
                    return WatchResult("timeout", view, time.monotonic() - started)
    finally:
        if feed is not None:
            feed.close()


def _wait_for_change(
    feed: ChangeFeed | None, started: float, timeout: float, interval: float
) -> bool:
    """Until an event (stream) or `interval` (polling); True when the timeout is over."""
    left = timeout - (time.monotonic() - started)
    if left <= 0:
        return True
    if feed is None or feed.failed.is_set() or not feed.live.is_set():
        time.sleep(max(0.05, min(interval, left)))  # polling: no stream (now)
    else:
        feed.changed(min(left, 30.0))  # an event; or a reading every 30 s, as a safety net
    return False
