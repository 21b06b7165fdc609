"""Reading the live event stream (`GET /api/events`, Server-Sent Events) from the SDK.

`SseParser` turns lines into events (the text/event-stream rules the service uses: `id`, `event`,
`data`, comments); `follow_events` / `follow_events_async` connect, yield events and, when the
connection drops (a restart, a proxy), reconnect with `Last-Event-ID`, so a caller sees every
event once, in order, across reconnects. They give up after `reconnect_for` seconds without a
connection, raising `ServiceUnreachable` (or the `ApiResponseError` the service answered).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx

from novita_manager.backoff import backoff_delay
from novita_manager.sdk.calls import ApiResponseError, ServiceUnreachable

EVENTS_PATH = "/api/events"
# Longer than the service's heartbeat interval (15 s by default): silence means a dead link.
DEFAULT_READ_TIMEOUT = 45.0


@dataclass(frozen=True)
class StreamEvent:
    """One event: `id` orders all events; `body` is `{type, timestamp, data}` (for webhook
    types exactly the webhook's body)."""

    id: int
    type: str
    body: dict[str, Any]

    @property
    def data(self) -> dict[str, Any]:
        data = self.body.get("data")
        return data if isinstance(data, dict) else {}


@dataclass
class SseParser:
    """Feeds lines of a text/event-stream; returns an event at each blank line ending one."""

    _id: str | None = None
    _event: str | None = None
    _data: list[str] = field(default_factory=list)
    # The stream's position: the last `id` line seen, also from a block without data (the
    # service sends its position first, so a reconnect resumes there even before any event).
    position: int | None = None

    def feed(self, line: str) -> StreamEvent | None:
        if line == "":
            return self._dispatch()
        if line.startswith(":"):
            return None  # a comment: heartbeat
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "id":
            self._id = value
            if value.isdigit():
                self.position = int(value)
        elif name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)
        return None

    def _dispatch(self) -> StreamEvent | None:
        event_id, kind, data = self._id, self._event, "\n".join(self._data)
        self._id, self._event, self._data = None, None, []
        if event_id is None or not event_id.isdigit() or not data:
            return None  # `retry:` or an empty block
        try:
            body = json.loads(data)
        except ValueError:
            return None
        if not isinstance(body, dict):
            return None
        return StreamEvent(int(event_id), kind or str(body.get("type") or "message"), body)


def _request_parts(
    instance_id: str | None, last_event_id: int | None
) -> tuple[dict[str, str], dict[str, str]]:
    params = {"instanceId": instance_id} if instance_id else {}
    headers = {"Accept": "text/event-stream"}
    if last_event_id is not None:
        headers["Last-Event-ID"] = str(last_event_id)
    return params, headers


def _refusal(response: httpx.Response, body: bytes) -> ApiResponseError:
    text = body.decode(errors="replace")
    try:
        parsed = json.loads(text)
    except ValueError:
        parsed = None
    return ApiResponseError(
        response.status_code, parsed if isinstance(parsed, dict) else None, text
    )


RECONNECT_BASE = 0.2  # seconds before the first reconnection, doubling up to RECONNECT_CAP
RECONNECT_CAP = 5.0


def _retryable(error: ApiResponseError) -> bool:
    return error.status_code == 429 or error.status_code >= 500


class _Follow:
    """What one follow of the stream carries across reconnections (shared by the sync and the
    asyncio loops): the last event id seen, the position callback, and how long it has failed."""

    def __init__(
        self,
        last_event_id: int | None,
        reconnect_for: float,
        on_position: Callable[[int], None] | None,
    ) -> None:
        self.last = last_event_id
        self.reconnect_for = reconnect_for
        self.on_position = on_position
        self.failing_since: float | None = None
        self.failures = 0
        self.parser = SseParser()

    def connected(self) -> None:
        self.failing_since, self.failures = None, 0
        self.parser = SseParser()

    def line(self, line: str) -> StreamEvent | None:
        """The event this line completes, unless already seen."""
        event = self.parser.feed(line)
        if event is not None and (self.last is None or event.id > self.last):
            self.last = event.id
            return event
        if event is None and line == "" and self.parser.position is not None:
            if self.last is None:
                self.last = self.parser.position
            if self.on_position is not None:
                self.on_position(self.parser.position)
                self.on_position = None  # once per call
        return None

    def failed(self, error: Exception) -> float:
        """The pause before reconnecting; raises `error` once failing for `reconnect_for`."""
        now = time.monotonic()
        self.failing_since = self.failing_since or now
        if now - self.failing_since > self.reconnect_for:
            raise error
        self.failures += 1
        return backoff_delay(self.failures, RECONNECT_BASE, RECONNECT_CAP)


def _unreachable(http: httpx.Client | httpx.AsyncClient, reason: str) -> ServiceUnreachable:
    return ServiceUnreachable(str(http.base_url), reason)


def follow_events(
    http: httpx.Client,
    *,
    instance_id: str | None = None,
    last_event_id: int | None = None,
    reconnect_for: float = 30.0,
    read_timeout: float = DEFAULT_READ_TIMEOUT,
    on_position: Callable[[int], None] | None = None,
) -> Iterator[StreamEvent]:
    """Every event after `last_event_id` (None: from the moment of connecting), forever.
    `on_position` is called with the stream's position when a connection has been set up
    (from then on no event is missed)."""
    follow = _Follow(last_event_id, reconnect_for, on_position)
    while True:
        params, headers = _request_parts(instance_id, follow.last)
        timeout = httpx.Timeout(10.0, read=read_timeout)
        try:
            with http.stream(
                "GET", EVENTS_PATH, params=params, headers=headers, timeout=timeout
            ) as response:
                if response.status_code != 200:
                    raise _refusal(response, response.read())
                follow.connected()
                for line in response.iter_lines():
                    if (event := follow.line(line)) is not None:
                        yield event
            error: Exception = _unreachable(http, "the stream ended")
        except httpx.TransportError as transport:
            error = _unreachable(http, str(transport) or type(transport).__name__)
        except ApiResponseError as refused:
            if not _retryable(refused):
                raise
            error = refused
        time.sleep(follow.failed(error))


async def follow_events_async(
    http: httpx.AsyncClient,
    *,
    instance_id: str | None = None,
    last_event_id: int | None = None,
    reconnect_for: float = 30.0,
    read_timeout: float = DEFAULT_READ_TIMEOUT,
    on_position: Callable[[int], None] | None = None,
) -> AsyncIterator[StreamEvent]:
    """`follow_events` for asyncio code."""
    follow = _Follow(last_event_id, reconnect_for, on_position)
    while True:
        params, headers = _request_parts(instance_id, follow.last)
        timeout = httpx.Timeout(10.0, read=read_timeout)
        try:
            async with http.stream(
                "GET", EVENTS_PATH, params=params, headers=headers, timeout=timeout
            ) as response:
                if response.status_code != 200:
                    raise _refusal(response, await response.aread())
                follow.connected()
                async for line in response.aiter_lines():
                    if (event := follow.line(line)) is not None:
                        yield event
            error: Exception = _unreachable(http, "the stream ended")
        except httpx.TransportError as transport:
            error = _unreachable(http, str(transport) or type(transport).__name__)
        except ApiResponseError as refused:
            if not _retryable(refused):
                raise
            error = refused
        await asyncio.sleep(follow.failed(error))
