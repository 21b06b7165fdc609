"""Events of the live stream and of an instance's history: their bodies and the SSE wire form.

One durable log (`event_log`, see store/events.py) orders every event by its `id`. An entry is
either a status change (a row of the instance's history) or a webhook event (a row of the
outbox); webhook events carry exactly the webhook's body, status changes the body built here
(`instance.status`). Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from pydantic import BaseModel, Field

from novita_manager.domain.payloads import iso

STATUS_EVENT = "instance.status"
# Sent first on every stream: how long a browser's EventSource waits before reconnecting.
RETRY_MILLISECONDS = 2000


@dataclass(frozen=True)
class EventRecord:
    """One entry of the events log as clients see it: `body` is `{type, timestamp, data}`."""

    id: int
    instance_id: str
    type: str
    body: dict[str, Any]


def status_body(
    *,
    instance_id: str,
    name: str | None,
    at: datetime,
    from_status: str | None,
    to_status: str,
    novita_status: str | None,
    reason: str | None,
) -> dict[str, Any]:
    """The body of an `instance.status` event, shaped like a webhook's (`type`, `timestamp`,
    `data`) so that one client handler reads both kinds."""
    return {
        "type": STATUS_EVENT,
        "timestamp": iso(at),
        "data": {
            "instanceId": instance_id,
            "name": name,
            "fromStatus": from_status,
            "status": to_status,
            "novitaStatus": novita_status,
            "reason": reason,
        },
    }


def sse_frame(record: EventRecord) -> bytes:
    """The event in the `text/event-stream` wire format (the JSON body is one line)."""
    data = orjson.dumps(record.body, option=orjson.OPT_UTC_Z)
    return b"id: %d\nevent: %s\ndata: %s\n\n" % (record.id, _one_line(record.type), data)


def sse_position(event_id: int) -> bytes:
    """An `id` without data: sets the client's Last-Event-ID without an event (EventSource
    and the SDK then resume from there)."""
    return b"id: %d\n\n" % event_id


def sse_comment(text: str) -> bytes:
    """A comment line: ignored by clients, it keeps proxies from closing an idle stream."""
    return b": %s\n\n" % _one_line(text)


def sse_preamble() -> bytes:
    """The first bytes of every stream: the reconnection delay and a comment, so the client
    and any proxy see the stream open at once."""
    return b"retry: %d\n\n" % RETRY_MILLISECONDS + sse_comment("connected")


def _one_line(text: str) -> bytes:
    return text.replace("\r", " ").replace("\n", " ").encode()


def parse_last_event_id(value: str | None) -> int | None:
    """The id a client resumes after (`Last-Event-ID`); None when absent or not an event id
    (a stream then starts live, as for a new client)."""
    if value is None:
        return None
    value = value.strip()
    if not value.isdigit() or len(value) > 18:
        return None
    return int(value)


class EventView(BaseModel):
    """One event of an instance's history: the live stream's event as JSON."""

    id: int = Field(description="Position in the events log, in commit order; the stream's `id`.")
    type: str = Field(
        description="`instance.status` (a status change) or a webhook event type "
        "(`instance.running`, ...)."
    )
    timestamp: str | None = Field(description="When it happened (ISO-8601, UTC).")
    data: dict[str, Any] = Field(
        description="The webhook's `data` for webhook events; `{instanceId, name, fromStatus, "
        "status, novitaStatus, reason}` for `instance.status`."
    )


class EventList(BaseModel):
    instanceId: str
    events: list[EventView] = Field(description="Oldest first.")
    nextAfter: int | None = Field(
        description="The `after` of the next page; null when this page is the last."
    )
