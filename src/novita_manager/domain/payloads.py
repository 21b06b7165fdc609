"""Webhook payloads (CONTRACT.md "Webhooks"), built from an instance's public representation."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from novita_manager.domain.views import InstanceView


def iso(moment: datetime | None) -> str | None:
    """ISO-8601 with a `Z`, the form every timestamp of the API uses."""
    if moment is None:
        return None
    return moment.isoformat().replace("+00:00", "Z")


def webhook_payload(
    event_type: str,
    view: InstanceView,
    *,
    now: datetime,
    created_at: datetime,
    error: str | None = None,
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "instanceId": view.id,
        "novitaInstanceId": view.novitaInstanceId,
        "name": view.name,
        "status": view.status.value,
        "elapsedTime": round((now - created_at).total_seconds(), 3),
        "instance": view.model_dump(mode="json"),
    }
    if error is not None:
        data["error"] = error
    return {"type": event_type, "timestamp": iso(now), "data": data}
