"""Webhook payloads (CONTRACT.md "Webhooks"), built from an instance's public representation."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any


def iso(moment: datetime | None) -> str | None:
    """ISO-8601 with a `Z`, the form every timestamp of the API uses."""
    if moment is None:
        return None
    return moment.isoformat().replace("+00:00", "Z")


def webhook_payload(
    event_type: str,
    instance: Mapping[str, Any],
    *,
    now: datetime,
    created_at: datetime,
    error: str | None = None,
) -> dict[str, Any]:
    """`instance`: the instance's view as JSON values (`store.views.instance_json`, which the
    typed `InstanceView` validates to the same; a test compares them)."""
    data: dict[str, Any] = {
        "instanceId": instance["id"],
        "novitaInstanceId": instance["novitaInstanceId"],
        "name": instance["name"],
        "status": instance["status"],
        "elapsedTime": round((now - created_at).total_seconds(), 3),
        "instance": dict(instance),
    }
    if error is not None:
        data["error"] = error
    return {"type": event_type, "timestamp": iso(now), "data": data}
