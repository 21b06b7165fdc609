"""What the service keeps of an upstream instance: a small, secret-free summary.

Passwords (`connectComponentSSH.password`, web terminal credentials, `sshPassword`) are never
copied, so they cannot reach the database, the API or a webhook.

Two facts span observations, so `merge` carries them from one to the next:
- `statusErrorSince`: when the current statusError was first seen. Novita may set statusError
  transiently (readings `status_error`); the lifecycle fails only on one that persists.
- Connection details: list items may lack endpoints and connectComponent* (readings
  `list_shape`); an observation without them (`detailed: false`) of an instance still running
  keeps the details of the last detailed one (from a GET).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

_CONNECT_KEYS = ("connectComponentSSH", "connectComponentJupyter", "connectComponentWebTerminal")


def _get(source: Any, *names: str) -> Any:
    for name in names:
        value = source.get(name) if isinstance(source, dict) else getattr(source, name, None)
        if value not in (None, ""):
            return value
    return None


def _json_time(value: Any) -> Any:
    """Datetimes (the client parses Unix-seconds strings) as ISO text for the JSON column."""
    return value.isoformat() if isinstance(value, datetime) else value


def summarize(instance: Any) -> dict[str, Any]:
    """Summary of a `novita.models.Instance` (or its raw dict) for the `observation` column."""
    status_error = _get(instance, "status_error", "statusError")
    error = None
    if status_error is not None:
        state = _get(status_error, "state")
        message = _get(status_error, "message")
        if state or message:
            error = {"state": state, "message": message}
    ports = []
    for mapping in _get(instance, "port_mappings", "portMappings") or []:
        port = _get(mapping, "port")
        if port is None:
            continue
        ports.append(
            {
                "port": int(port),
                "endpoint": _get(mapping, "endpoint"),
                "type": _get(mapping, "type"),
            }
        )
    ssh = _get(instance, "connect_component_ssh", "connectComponentSSH")
    jupyter = _get(instance, "connect_component_jupyter", "connectComponentJupyter")
    terminal = _get(instance, "connect_component_web_terminal", "connectComponentWebTerminal")
    connection = {
        "ssh": _get(ssh, "ssh_command", "sshCommand") if ssh is not None else None,
        "jupyter": _get(jupyter, "address") if jupyter is not None else None,
        "webTerminal": _get(terminal, "address") if terminal is not None else None,
    }
    if isinstance(instance, dict):
        detailed = any(isinstance(instance.get(key), dict) for key in _CONNECT_KEYS)
    else:
        detailed = bool(getattr(instance, "has_connection_details", False))
    return {
        "status": _get(instance, "status"),
        "statusError": error,
        "clusterId": _get(instance, "cluster_id", "clusterId"),
        "portMappings": ports,
        "connectionDetails": {key: value for key, value in connection.items() if value},
        "spotStatus": _get(instance, "spot_status", "spotStatus"),
        "spotReclaimTime": _json_time(_get(instance, "spot_reclaim_time", "spotReclaimTime")),
        "detailed": detailed,
    }


def merge(previous: dict[str, Any] | None, new: dict[str, Any], now: datetime) -> dict[str, Any]:
    """`new` with what it cannot know by itself carried over from `previous` (see the module
    docstring): when its statusError was first seen, and the connection details of a running
    instance seen in a list item without them."""
    merged = dict(new)
    if merged.get("statusError"):
        since = (
            (previous or {}).get("statusErrorSince")
            if (previous or {}).get("statusError")
            else None
        )
        merged["statusErrorSince"] = since or now.isoformat()
    else:
        merged.pop("statusErrorSince", None)
    if (
        previous
        and not merged.get("detailed")
        and merged.get("status") == "running"
        and previous.get("status") == "running"
        and previous.get("detailed")
    ):
        endpoints = {
            mapping.get("port"): mapping.get("endpoint")
            for mapping in previous.get("portMappings") or []
        }
        merged["portMappings"] = [
            {**mapping, "endpoint": mapping.get("endpoint") or endpoints.get(mapping.get("port"))}
            for mapping in merged.get("portMappings") or []
        ] or list(previous.get("portMappings") or [])
        merged["connectionDetails"] = dict(previous.get("connectionDetails") or {})
        merged["detailed"] = True
    return merged


def status_error_since(observation: dict[str, Any] | None) -> datetime | None:
    """When the observation's statusError was first seen (None when unknown or no error)."""
    raw = (observation or {}).get("statusErrorSince")
    if not isinstance(raw, str):
        return None
    try:
        return datetime.fromisoformat(raw)
    except ValueError:
        return None


def gone() -> dict[str, Any]:
    """The observation of an instance that Novita no longer knows (404 or `removed`)."""
    return {"status": "removed", "statusError": None, "portMappings": [], "gone": True}


def status_error_text(observation: dict[str, Any] | None) -> str | None:
    if not observation or not observation.get("statusError"):
        return None
    error = observation["statusError"]
    parts = [part for part in (error.get("state"), error.get("message")) if part]
    return ": ".join(parts) or "instance reported an error"
