"""What the service keeps of an upstream instance: a small, secret-free summary.

Passwords (`connectComponentSSH.password`, web terminal credentials, `sshPassword`) are never
copied, so they cannot reach the database, the API or a webhook.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any


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
    return {
        "status": _get(instance, "status"),
        "statusError": error,
        "clusterId": _get(instance, "cluster_id", "clusterId"),
        "portMappings": ports,
        "connectionDetails": {key: value for key, value in connection.items() if value},
        "spotStatus": _get(instance, "spot_status", "spotStatus"),
        "spotReclaimTime": _json_time(_get(instance, "spot_reclaim_time", "spotReclaimTime")),
    }


def gone() -> dict[str, Any]:
    """The observation of an instance that Novita no longer knows (404 or `removed`)."""
    return {"status": "removed", "statusError": None, "portMappings": [], "gone": True}


def status_error_text(observation: dict[str, Any] | None) -> str | None:
    if not observation or not observation.get("statusError"):
        return None
    error = observation["statusError"]
    parts = [part for part in (error.get("state"), error.get("message")) if part]
    return ": ".join(parts) or "instance reported an error"
