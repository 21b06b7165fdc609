"""How the dashboard shows values: ages, money, timestamps, status colours (pure, no I/O).

Jinja filters take what the JSON views hold (ISO-8601 text, floats that may be absent), so a
field another part adds later (`costToDate`, `reclaimAt`, ...) shows as soon as it is there.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

# The CSS class of each status: one colour per family (settled, moving, ended, failed).
STATUS_CLASS = {
    "running": "ok",
    "creating": "moving",
    "starting": "moving",
    "stopping": "moving",
    "deleting": "moving",
    "stopped": "idle",
    "deleted": "idle",
    "failed": "bad",
}
# Operations the dashboard offers in each status (the service still decides: a 409 is shown).
ACTIONS = {
    "running": ("stop", "delete"),
    "starting": ("stop", "delete"),
    "creating": ("delete",),
    "stopping": ("delete",),
    "stopped": ("start", "delete"),
    "failed": ("delete",),
}


def parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def duration(seconds: float) -> str:
    """`45s`, `12m`, `3h 05m`, `2d 04h`: short enough for a phone's column."""
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, _ = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h {minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d {hours:02d}h"


def age(value: Any, now: datetime | None = None) -> str:
    """Time since an ISO-8601 timestamp, or `-`."""
    at = parse_time(value)
    if at is None:
        return "-"
    return duration(((now or datetime.now(UTC)) - at).total_seconds())


def until(value: Any, now: datetime | None = None) -> str:
    """`in 5m` for a future timestamp, `5m ago` for a past one, or `-`."""
    at = parse_time(value)
    if at is None:
        return "-"
    delta = (at - (now or datetime.now(UTC))).total_seconds()
    return f"in {duration(delta)}" if delta >= 0 else f"{duration(-delta)} ago"


def money(value: Any, per_hour: bool = False) -> str:
    """`$0.35/h`, `$12.40`, `$0.0042`: USD with the precision small amounts need; `-` if none."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return "-"
    if value == 0 or abs(value) >= 1:
        text = f"${value:,.2f}"
    elif abs(value) < 0.0001:
        text = "<$0.0001"
    else:  # cents and below: up to 4 decimals, at least 2
        digits = f"{abs(value):.4f}".rstrip("0")
        text = ("-" if value < 0 else "") + "$" + digits.ljust(4, "0")
    return f"{text}/h" if per_hour else text


def timestamp(value: Any) -> str:
    """`2026-12-02 13:05:09 UTC`, or `-`."""
    at = parse_time(value)
    return "-" if at is None else at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def web_url(value: Any) -> str:
    """An http(s) URL as is; anything else (`javascript:`, ...) becomes `#`, never a link."""
    text = str(value or "")
    return text if text.lower().startswith(("http://", "https://")) else "#"


def status_class(status: Any) -> str:
    return STATUS_CLASS.get(str(status), "idle")


def actions(status: Any) -> tuple[str, ...]:
    return ACTIONS.get(str(status), ())


FILTERS = {
    "age": age,
    "until": until,
    "money": money,
    "timestamp": timestamp,
    "status_class": status_class,
    "duration": duration,
    "web_url": web_url,
}
