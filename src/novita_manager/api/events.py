"""Live events (`GET /api/events`, Server-Sent Events) and an instance's history as JSON: thin
handlers over `services.events` (docs/api.md "Live events" describes the stream)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Path, Query

from novita_manager.api.deps import get_runtime
from novita_manager.api.openapi import error_responses
from novita_manager.domain.events import EventList, EventView, parse_last_event_id
from novita_manager.event_stream import EventStreamResponse
from novita_manager.services import events, queries
from novita_manager.services.runtime import Runtime

router = APIRouter(tags=["events"])
RuntimeDep = Annotated[Runtime, Depends(get_runtime)]

# Streams end when the server shuts down (http_server.GuardedHttpToolsProtocol.shutdown closes
# their connections), instead of holding the graceful shutdown for its whole timeout. The
# dashboard serves the same stream behind its session cookie at /ui/events.
EVENT_STREAM_PATHS = frozenset({"/api/events", "/ui/events"})

EXAMPLE = (
    "retry: 2000\n\n: connected\n\n"
    "id: 7\nevent: instance.status\n"
    'data: {"type":"instance.status","timestamp":"2026-01-01T12:00:01Z","data":{"instanceId":'
    '"3f0c...","name":"train-1","fromStatus":"starting","status":"running","novitaStatus":'
    '"running","reason":null}}\n\n'
    "id: 8\nevent: instance.running\n"
    'data: {"type":"instance.running","timestamp":"2026-01-01T12:00:01Z","data":{...}}\n\n'
    ": heartbeat\n\n"
)


@router.get(
    "/api/events",
    status_code=200,
    response_class=EventStreamResponse,
    responses={
        200: {
            "description": "The event stream (docs/api.md). Each event: `id` (commit order), "
            "`event` (the type), `data` (the webhook body, or the `instance.status` body).",
            "content": {"text/event-stream": {"schema": {"type": "string"}, "example": EXAMPLE}},
        },
        **error_responses(
            400,
            404,
            503,
            e404="No such instance (`INSTANCE_NOT_FOUND`) for `instanceId`",
            e503="Too many open event streams on this process (`SERVICE_UNAVAILABLE`, "
            "`details.reason` `event_streams`, EVENTS_MAX_STREAMS), or it is overloaded; "
            "retry after `Retry-After` seconds",
        ),
    },
    summary="Live events (Server-Sent Events), resumable with Last-Event-ID",
    description="Every status change (`instance.status`) and every webhook event with the "
    "webhook's body, in commit order, from the database (any replica serves the same stream). "
    "Resume with the `Last-Event-ID` header (sent by EventSource on reconnect) or `lastEventId`: "
    "every later event is replayed from the history, none lost or repeated. Without either, "
    "the stream starts with events after the connection. Heartbeat comments every "
    "EVENTS_HEARTBEAT_INTERVAL.",
)
async def event_stream(
    runtime: RuntimeDep,
    instance_id: Annotated[
        str | None,
        Query(
            alias="instanceId",
            min_length=1,
            max_length=100,
            description="Only this instance's events (our id or its Novita id).",
        ),
    ] = None,
    last_event_id_query: Annotated[
        int | None,
        Query(
            alias="lastEventId",
            ge=0,
            le=10**18,
            description="Resume after this event id (the `Last-Event-ID` header wins).",
        ),
    ] = None,
    last_event_id: Annotated[
        str | None,
        Header(
            alias="Last-Event-ID",
            max_length=100,
            description="Resume after this event id; a value that is not one starts live.",
        ),
    ] = None,
) -> EventStreamResponse:
    resume = parse_last_event_id(last_event_id)
    if resume is None:
        resume = last_event_id_query
    own_id = None
    if instance_id is not None:
        own_id = (await queries.find_instance(runtime, instance_id)).id
    runtime.events.admit()  # 503 beyond EVENTS_MAX_STREAMS, before the stream starts
    return EventStreamResponse(events.stream(runtime.events, own_id, resume))


@router.get(
    "/api/instances/{instanceId}/events",
    response_model=EventList,
    responses=error_responses(400, 404, e404="No such instance (`INSTANCE_NOT_FOUND`)"),
    summary="An instance's events, oldest first (the live stream's events as JSON)",
    description="Status changes (`instance.status`) and webhook events with their bodies, paged "
    "by event id: pass the previous page's `nextAfter` as `after`.",
)
async def instance_events(
    runtime: RuntimeDep,
    instance_id: Annotated[str, Path(alias="instanceId", max_length=100)],
    after: Annotated[int, Query(ge=0, le=10**18, description="Only events after this id.")] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> EventList:
    row = await queries.find_instance(runtime, instance_id)
    records, next_after = await events.history(runtime.db, row.id, after, limit)
    return EventList(
        instanceId=row.id,
        events=[
            EventView(
                id=record.id,
                type=record.type,
                timestamp=record.body.get("timestamp"),
                data=record.body.get("data") or {},
            )
            for record in records
        ],
        nextAfter=next_after,
    )
