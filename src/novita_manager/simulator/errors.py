"""Novita's error envelope `{code, reason, message, metadata}` as an exception of the engine."""

from __future__ import annotations

from typing import Any

# Reason used for a transition that the current status does not allow (message: the one sontl
# saw on the real API, `invalid state change`).
INVALID_STATE_CHANGE = "INVALID_STATE_CHANGE"


class SimulatorError(Exception):
    """An error Novita would answer with: HTTP status, reason name, message and metadata."""

    def __init__(
        self,
        status: int,
        reason: str,
        message: str,
        metadata: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.message = message
        self.metadata = metadata or {}
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {
            "code": self.status,
            "reason": self.reason,
            "message": self.message,
            "metadata": self.metadata,
        }


def invalid_param(field: str, message: str) -> SimulatorError:
    """400 VALIDATOR_PARAM naming the bad field (in the message and in `metadata.field`)."""
    return SimulatorError(400, "VALIDATOR_PARAM", f"{field}: {message}", {"field": field})


def instance_not_found(instance_id: str) -> SimulatorError:
    return SimulatorError(
        404, "RESOURCE_NOT_FOUND", "instance not found", {"instanceId": instance_id}
    )


def invalid_state_change(instance_id: str, status: str, action: str) -> SimulatorError:
    return SimulatorError(
        400,
        INVALID_STATE_CHANGE,
        "invalid state change",
        {"instanceId": instance_id, "status": status, "action": action},
    )
