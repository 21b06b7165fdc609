"""Health endpoints for operators and orchestrators (CONTRACT.md "Health and metrics").

`/health` runs the real checks (see `services.health`); `/health/live` only proves the process
serves HTTP (restart it when this fails); `/health/ready` says whether it can take traffic (database
reachable, schema migrated, runtime started). They stay open when API_KEYS is set and carry no
secrets.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from novita_manager import __version__
from novita_manager.domain.payloads import iso
from novita_manager.services.health import UNHEALTHY, HealthChecker

router = APIRouter(tags=["health"])


class HealthReport(BaseModel):
    status: Literal["healthy", "degraded", "unhealthy"] = Field(
        description="`healthy`; `degraded` (200: work is still accepted and stored) when Novita is "
        "unreachable or its circuit is not closed, a pipeline backlog is old or a webhook "
        "delivery failed in the last hour; `unhealthy` (503) when the database is unreachable."
    )
    version: str
    checks: dict[str, dict[str, Any]] = Field(
        description="`database` {status, dialect, latencyMs | error}; `novita` {status, "
        "reachable, circuit, consecutiveFailures, statusSync, lastProbe?, error?}; `pipelines` "
        "{status, provisioning and webhookDelivery {dueRows, oldestDueAgeSeconds}}; "
        "`webhooks` {status, failedLastHour, retrying}."
    )
    timestamp: str


class Liveness(BaseModel):
    status: Literal["alive"]
    version: str
    timestamp: str


class Readiness(BaseModel):
    status: Literal["ready", "not_ready"]
    checks: dict[str, dict[str, Any]] = Field(
        description="`database` {status, ...}; `migrations` {status, current, head}."
    )
    timestamp: str


def checker_of(request: Request) -> HealthChecker | None:
    """The app's checker for its current runtime; None before start-up completed."""
    state = request.app.state
    runtime = getattr(state, "runtime", None)
    if runtime is None:
        return None
    checker: HealthChecker | None = getattr(state, "health_checker", None)
    if checker is None or checker.runtime is not runtime:
        checker = HealthChecker(runtime)
        state.health_checker = checker
    return checker


def _not_started(status: str) -> JSONResponse:
    body: dict[str, Any] = {"status": status, "checks": {}, "timestamp": iso(datetime.now(UTC))}
    return JSONResponse({**body, "version": __version__}, status_code=503)


@router.get(
    "/health",
    response_model=HealthReport,
    summary="Health with real checks",
    responses={503: {"model": HealthReport, "description": "`unhealthy`: database unreachable"}},
)
async def health(request: Request) -> Any:
    checker = checker_of(request)
    if checker is None:
        return _not_started(UNHEALTHY)
    report = await checker.check()
    return JSONResponse(report, status_code=503 if report["status"] == UNHEALTHY else 200)


@router.get(
    "/health/live",
    response_model=Liveness,
    summary="Liveness: the process serves HTTP",
    description="Always 200 while the process answers; touches neither the database nor Novita.",
)
async def live() -> dict[str, str | None]:
    return {"status": "alive", "version": __version__, "timestamp": iso(datetime.now(UTC))}


@router.get(
    "/health/ready",
    response_model=Readiness,
    summary="Readiness: database reachable, migrations applied, runtime started",
    responses={503: {"model": Readiness, "description": "`not_ready`"}},
)
async def ready(request: Request) -> Any:
    checker = checker_of(request)
    if checker is None:
        return JSONResponse(
            {"status": "not_ready", "checks": {}, "timestamp": iso(datetime.now(UTC))},
            status_code=503,
        )
    is_ready, body = await checker.readiness()
    return JSONResponse(body, status_code=200 if is_ready else 503)
