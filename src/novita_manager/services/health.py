"""Health, readiness and scrape-time gauges: what an operator or orchestrator asks the service.

Every check is bounded in time and cheap: the database check is one `SELECT 1`; the backlog is one
indexed query per pipeline (`next_attempt_at` is indexed); webhook failures start from the indexed
`status` column. Novita reachability costs no upstream call while the status sync has recent
evidence (it lists the account every interval) or the circuit is open; otherwise one
`GET /clusters` probe runs at most every `PROBE_INTERVAL` seconds, shared by concurrent callers, so
a health check never adds upstream load per call.

The key is checked once at start-up, in the background (`check_key_once`): a refused key is one
log line (`novita_key_refused`) and /health's Novita check says "API key refused by Novita" until
a later call succeeds; Novita merely unreachable at start-up neither blocks nor fails start-up.

Overall status: `unhealthy` (503) when the database is unreachable (nothing can be stored);
`degraded` (200: the service still accepts and stores work) when Novita is unreachable or the
circuit is not closed, a pipeline's oldest due row waits longer than `BACKLOG_MAX_AGE`, a
webhook delivery failed within `WEBHOOK_FAILURE_WINDOW`, or the oldest pending webhook delivery
was committed more than `WEBHOOK_MAX_PENDING_AGE` ago (the check then names the worst
destination by host only, never the path or query); `healthy` otherwise.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import distinct, func, select
from sqlalchemy.engine import make_url

from novita_manager import __version__
from novita_manager.domain.payloads import iso
from novita_manager.domain.statuses import DeliveryStatus
from novita_manager.engine.webhook_destinations import host_of
from novita_manager.logging import get_logger
from novita_manager.novita.errors import NovitaError, NovitaUnauthorized, is_transient
from novita_manager.services.checks import (
    Deadlines,
    backlog_of,
    describe,
    instances_by_status,
    pending_webhooks,
    waiting_by_state,
)
from novita_manager.store import migrate
from novita_manager.store.models import WebhookAttempt, WebhookDelivery
from novita_manager.store.types import utcnow

if TYPE_CHECKING:
    from novita_manager.services.runtime import Runtime

log = get_logger(__name__)

HEALTHY, DEGRADED, UNHEALTHY = "healthy", "degraded", "unhealthy"
DB_TIMEOUT = 2.0  # a database slower than this to answer SELECT 1 counts as down
QUERY_TIMEOUT = 3.0
PROBE_INTERVAL = 30.0  # at most one upstream probe per this many seconds
PROBE_TIMEOUT = 5.0
BACKLOG_MAX_AGE = 120.0  # claims take milliseconds; a row due this long means stuck workers
WEBHOOK_FAILURE_WINDOW = timedelta(hours=1)
KEY_REFUSED_REASON = "API key refused by Novita"


@dataclass
class Probe:
    at: datetime
    monotonic: float
    ok: bool
    reachable: bool
    error: str | None


class HealthChecker:
    """The checks behind /health and /health/ready for one runtime (it keeps the probe cache)."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self._probe: Probe | None = None
        self._probe_lock = asyncio.Lock()
        self._secrets = self._secret_values()
        self._deadlines = Deadlines()

    async def refresh_gauges(self) -> None:
        """Bring the sampled gauges up to date just before a scrape (failures only log)."""
        runtime, run = self.runtime, self._deadlines.run
        metrics = runtime.metrics
        metrics.set_circuit_state(runtime.client.breaker.state)
        try:
            counts = await run("instances", lambda: instances_by_status(runtime), QUERY_TIMEOUT)
            for status, count in counts.items():
                metrics.instances_by_status.labels(status).set(count)
            for pipeline in (runtime.provisioning, runtime.webhook_pipeline):
                backlog = await run(
                    f"backlog:{pipeline.name}",
                    lambda p=pipeline: backlog_of(runtime, p),  # type: ignore[misc]
                    QUERY_TIMEOUT,
                )
                metrics.pipeline_backlog.labels(pipeline.name).set(backlog.due_rows)
            pending = await run(
                "webhooks:pending", lambda: pending_webhooks(runtime), QUERY_TIMEOUT
            )
            for state, count in waiting_by_state(runtime, pending).items():
                metrics.webhook_waiting.labels(state).set(count)
        except Exception as error:
            log.warning("metrics_refresh_failed", error=self._scrub(describe(error)))

    # /health -----------------------------------------------------------------------------

    async def check(self) -> dict[str, Any]:
        now = utcnow()
        database = await self.check_database()
        novita = await self.check_novita()
        if database["status"] == "ok":
            pipelines = await self._guarded("pipelines", lambda: self.check_pipelines(now))
            webhooks = await self._guarded("webhooks", lambda: self.check_webhooks(now))
        else:
            skipped = {"status": "unknown", "error": "database unreachable"}
            pipelines, webhooks = dict(skipped), dict(skipped)
        checks = {
            "database": database,
            "novita": novita,
            "pipelines": pipelines,
            "webhooks": webhooks,
        }
        if database["status"] != "ok":
            status = UNHEALTHY
        elif any(check["status"] != "ok" for check in checks.values()):
            status = DEGRADED
        else:
            status = HEALTHY
        return {"status": status, "version": __version__, "checks": checks, "timestamp": iso(now)}

    async def check_database(self) -> dict[str, Any]:
        started = time.perf_counter()
        try:
            await self._deadlines.run("database", self.runtime.db.ping, DB_TIMEOUT)
        except Exception as error:
            log.warning("health_database_down", error=self._scrub(describe(error)))
            return {
                "status": "down",
                "dialect": self.runtime.db.dialect,
                "error": self._scrub(describe(error)),
            }
        return {
            "status": "ok",
            "dialect": self.runtime.db.dialect,
            "latencyMs": round((time.perf_counter() - started) * 1000, 2),
        }

    async def check_novita(self) -> dict[str, Any]:
        breaker = self.runtime.client.breaker
        sync = self.runtime.status_sync
        circuit = breaker.state
        body: dict[str, Any] = {
            "circuit": circuit,
            "consecutiveFailures": breaker.consecutive_failures,
            "statusSync": {
                "lastSuccessAt": iso(sync.health.last_success_at),
                "consecutiveFailures": sync.health.consecutive_failures,
                "lastError": self._scrub(sync.health.last_error),
                "runs": sync.health.runs,
            },
        }
        fresh_for = timedelta(seconds=max(3 * sync.interval, PROBE_INTERVAL))
        last_success = sync.health.last_success_at
        if circuit == "open":
            body.update(status="degraded", reachable=False, error="circuit open: failing fast")
        elif sync.health.consecutive_failures > 0:
            body.update(
                status="degraded", reachable=False, error="the status sync cannot list instances"
            )
        elif last_success is not None and utcnow() - last_success <= fresh_for:
            body.update(status="ok" if circuit == "closed" else "degraded", reachable=True)
        else:
            probe = await self._probe_upstream()
            body["lastProbe"] = {"at": iso(probe.at), "ok": probe.ok, "error": probe.error}
            body["reachable"] = probe.reachable
            body["status"] = "ok" if probe.ok and circuit == "closed" else "degraded"
            if probe.error:
                body["error"] = probe.error
        if circuit == "half_open":
            body.setdefault("error", "circuit half-open: probing the upstream")
        key = self.runtime.key_check
        body["key"] = key.to_json()
        if key.refused_since(sync.health.last_success_at):
            body.update(status="degraded", reachable=True, error=KEY_REFUSED_REASON)
        return body

    async def check_pipelines(self, now: datetime) -> dict[str, Any]:
        body: dict[str, Any] = {"status": "ok", "maxOldestDueAgeSeconds": BACKLOG_MAX_AGE}
        for key, pipeline in (
            ("provisioning", self.runtime.provisioning),
            ("webhookDelivery", self.runtime.webhook_pipeline),
        ):
            backlog = await backlog_of(self.runtime, pipeline)
            age = backlog.oldest_age(now)
            body[key] = {"dueRows": backlog.due_rows, "oldestDueAgeSeconds": age}
            if age is not None and age > BACKLOG_MAX_AGE:
                body["status"] = "degraded"
        return body

    async def check_webhooks(self, now: datetime) -> dict[str, Any]:
        since = now - WEBHOOK_FAILURE_WINDOW
        failed = (
            select(func.count(distinct(WebhookDelivery.id)))
            .join(WebhookAttempt, WebhookAttempt.delivery_id == WebhookDelivery.id)
            .where(
                WebhookDelivery.status == DeliveryStatus.FAILED,
                WebhookAttempt.attempted_at >= since,
            )
        )
        retrying = select(func.count()).where(
            WebhookDelivery.status == DeliveryStatus.PENDING, WebhookDelivery.attempts > 0
        )
        async with self.runtime.db.read_session() as session:
            failed_count = int(await session.scalar(failed) or 0)
            retrying_count = int(await session.scalar(retrying) or 0)
        pending = await pending_webhooks(self.runtime)
        body: dict[str, Any] = {
            "status": "degraded" if failed_count else "ok",
            "failedLastHour": failed_count,
            "retrying": retrying_count,
            "waiting": waiting_by_state(self.runtime, pending),
            "oldestPendingAgeSeconds": None,
            "maxPendingAgeSeconds": self.runtime.settings.webhook_max_pending_age,
        }
        oldest = pending.oldest()
        if oldest is not None:
            key, committed = oldest
            age = round(max((now - committed).total_seconds(), 0.0), 3)
            body["oldestPendingAgeSeconds"] = age
            if age > self.runtime.settings.webhook_max_pending_age:
                body["status"] = "degraded"
                body["worstDestination"] = host_of(key)
        return body

    # /health/ready -----------------------------------------------------------------------

    async def readiness(self) -> tuple[bool, dict[str, Any]]:
        """Ready when the database answers and its schema is at this version's head."""
        database = await self.check_database()
        head = migrate.head_revision()
        current: str | None = None
        if database["status"] == "ok":
            try:
                current = await self._deadlines.run(
                    "migrations", self._current_revision, QUERY_TIMEOUT
                )
            except Exception as error:
                database = {"status": "down", "error": self._scrub(describe(error))}
        migrations = {"status": "ok" if current == head else "pending", "current": current}
        migrations["head"] = head
        ready = database["status"] == "ok" and current == head
        body = {
            "status": "ready" if ready else "not_ready",
            "checks": {"database": database, "migrations": migrations},
            "timestamp": iso(utcnow()),
        }
        return ready, body

    async def _current_revision(self) -> str | None:
        async with self.runtime.db.engine.connect() as conn:
            return await conn.run_sync(migrate.current_revision)

    # helpers -----------------------------------------------------------------------------

    async def _guarded(
        self, name: str, check: Callable[[], Awaitable[dict[str, Any]]]
    ) -> dict[str, Any]:
        try:
            return await self._deadlines.run(name, check, QUERY_TIMEOUT)
        except Exception as error:
            return {"status": "unknown", "error": self._scrub(describe(error))}

    async def _probe_upstream(self) -> Probe:
        async with self._probe_lock:
            cached = self._probe
            if cached is not None and time.monotonic() - cached.monotonic < PROBE_INTERVAL:
                return cached
            at, started = utcnow(), time.monotonic()
            try:
                await asyncio.wait_for(self.runtime.client.list_clusters(), PROBE_TIMEOUT)
                probe = Probe(at, started, ok=True, reachable=True, error=None)
                if self.runtime.key_check.state == "refused":
                    self.runtime.key_check.record("accepted")
            except NovitaUnauthorized as error:
                self.runtime.key_check.record("refused", error.status)
                probe = Probe(at, started, False, True, KEY_REFUSED_REASON)
            except NovitaError as error:
                reachable = not is_transient(error)  # e.g. 401: the upstream answered
                probe = Probe(at, started, False, reachable, (self._scrub(str(error)) or "")[:300])
            except Exception as error:
                probe = Probe(at, started, False, False, self._scrub(describe(error)))
            self._probe = probe
            return probe

    def _secret_values(self) -> list[str]:
        values = self.runtime.settings.secret_values()
        password = make_url(self.runtime.settings.database_url).password
        if password:
            values.append(str(password))
        return values

    def _scrub(self, text: str | None) -> str | None:
        """Health bodies are unauthenticated: never let a configured secret through."""
        if text is None:
            return None
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text
