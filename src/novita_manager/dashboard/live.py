"""The event stream for the dashboard's pages: `GET /ui/events`, the API's stream behind the
session cookie.

A browser's EventSource cannot send `Authorization: Bearer`, so the pages cannot open
`/api/events` when API keys are configured; this route serves the same stream (services.events:
same events, same ids, resumable with `Last-Event-ID`) to a logged-in session. The page's
script refetches the parts that changed when an event arrives (static/live.js).
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from novita_manager.dashboard.web import current_session, runtime_of
from novita_manager.domain.events import parse_last_event_id
from novita_manager.errors import ApiError
from novita_manager.event_stream import EventStreamResponse
from novita_manager.services import events, queries

router = APIRouter(include_in_schema=False)
STREAM_PATH = "/ui/events"


@router.get(STREAM_PATH)
async def event_stream(
    request: Request, instanceId: str | None = None, after: str | None = None
) -> Response:
    """`after`: the newest event id when the page was rendered, so nothing between the render
    and the connection is missed; the `Last-Event-ID` of a reconnection wins over it."""
    current_session(request)  # LoginNeeded without a valid session
    runtime = runtime_of(request)
    own_id = None
    try:
        if instanceId:
            own_id = (await queries.find_instance(runtime, instanceId[:100])).id
        runtime.events.admit()  # the same EVENTS_MAX_STREAMS cap as /api/events
    except ApiError as refused:  # unknown instance, or too many streams
        return Response(refused.message, status_code=refused.status_code, headers=refused.headers)
    resume = parse_last_event_id(request.headers.get("last-event-id"))
    if resume is None:
        resume = parse_last_event_id(after)
    return EventStreamResponse(events.stream(runtime.events, own_id, resume))
