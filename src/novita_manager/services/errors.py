"""Upstream failures as the API's errors: the one place that knows which Novita error is which
public answer, so the API layer handles `UpstreamFailure` without knowing the client."""

from __future__ import annotations

from novita_manager.errors import ApiError, UpstreamError, UpstreamUnavailable
from novita_manager.novita.errors import NovitaError, NovitaUnauthorized, NovitaUnavailable

UpstreamFailure = NovitaError  # what a use case may let through when Novita fails


def upstream_api_error(error: NovitaError) -> ApiError:
    """A Novita failure that reached a request (e.g. Novita refused our key): 502, or 503
    while the circuit is open. Most requests never see one: they answer from the database."""
    if isinstance(error, NovitaUnavailable):
        return UpstreamUnavailable(
            "Novita is unavailable (circuit open)",
            headers={"Retry-After": str(max(1, round(error.retry_after or 1)))},
        )
    message = (
        "Novita refused the service's API key (check NOVITA_API_KEY)"
        if isinstance(error, NovitaUnauthorized)
        else f"Novita answered with an error: {error.message}"
    )
    return UpstreamError(
        message, details={"upstreamStatus": error.status, "upstreamReason": error.reason}
    )
