"""Settings of the live event stream (`GET /api/events`, issue 18).

Declared apart from `settings.py` (near the module size limit) and mixed into `Settings`.
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings


class EventSettings(BaseSettings):
    """How often streams learn of new events, how they stay open, and how many there may be."""

    events_poll_interval: float = Field(
        default=0.5,
        gt=0,
        le=60,
        description="Seconds between two reads of new events by a process with open event "
        "streams (one read per process, whatever the number of streams).",
    )
    events_heartbeat_interval: float = Field(
        default=15.0,
        gt=0,
        le=3600,
        description="Seconds between heartbeat comments on an idle event stream, so that "
        "proxies do not close it.",
    )
    events_max_streams: int = Field(
        default=200,
        ge=1,
        le=100_000,
        description="Open event streams per process; one more is answered 503.",
    )
