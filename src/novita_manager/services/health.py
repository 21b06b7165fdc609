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
from typing import TYPE_CHECKING, Any, TypeVar, cast

from sqlalchemy import ColumnElement, and_, distinct, func, or_, select
from sqlalchemy.engine import make_url

from novita_manager import __version__
from novita_manager.domain.payloads import iso
from novita_manager.domain.statuses import Status
from novita_manager.engine.leases import LeasedModel
from novita_manager.engine.pipeline import Pipeline
from novita_manager.engine.webhook_delivery import WebhookDeliveryHandler
from novita_manager.engine.webhook_destinations import STATES, destination_of, host_of
from novita_manager.logging import get_logger
from novita_manager.novita.errors import NovitaError, NovitaUnauthorized, is_transient
from novita_manager.store import migrate
from novita_manager.store.models import Instance, WebhookAttempt, WebhookDelivery
from novita_manager.store.types import utcnow

if TYPE_CHECKING:
    from novita_manager.services.runtime import Runtime

log = get_logger(__name__)
T = TypeVar("T")

HEALTHY, DEGRADED, UNHEALTHY = "healthy", "degraded", "unhealthy"
DB_TIMEOUT = 2.0  # a database slower than this to answer SELECT 1 counts as down
QUERY_TIMEOUT = 3.0
PROBE_INTERVAL = 30.0  # at most one upstream probe per this many seconds
PROBE_TIMEOUT = 5.0
BACKLOG_MAX_AGE = 120.0  # claims take milliseconds; a row due this long means stuck workers
WEBHOOK_FAILURE_WINDOW = timedelta(hours=1)
KEY_REFUSED_REASON = "API key refused by Novita"


@dataclass
class KeyCheck:
    """What Novita said about NOVITA_API_KEY: `pending` until the start-up check answers, then
    `accepted`, `refused` (401/403) or `unknown` (Novita unreachable: the key is not judged)."""

    state: str = "pending"
    at: datetime | None = None
    status: int | None = None

    def record(self, state: str, status: int | None = None) -> None:
        self.state, self.at, self.status = state, utcnow(), status

    def refused_since(self, last_success: datetime | None) -> bool:
        """Refused, and no upstream call has succeeded since (which would prove it wrong)."""
        if self.state != "refused" or self.at is None:
            return False
        return last_success is None or last_success < self.at

    def to_json(self) -> dict[str, Any]:
        return {"status": self.state, "checkedAt": iso(self.at), "httpStatus": self.status}


async def check_key_once(runtime: Runtime) -> None:
    """The start-up key check: one GET /clusters (with the client's usual retries).

    Why at start-up: a wrong key otherwise shows only as failing creates and a sync that cannot
    list, and the operator has to read the tail of a log to learn why. Never raises: a refusal is
    recorded and logged once (without the key); an unreachable Novita is logged and left to the
    status sync and the health probe.
    """
    key = runtime.key_check
    try:
        await runtime.client.list_clusters()
    except NovitaUnauthorized as error:
        key.record("refused", error.status)
        log.error(
            "novita_key_refused",
            status=error.status,
            reason=error.reason,
            base_url=runtime.settings.novita_api_base_url,
            hint="set NOVITA_API_KEY to a valid key (run `novita-manager doctor`)",
        )
    except Exception as error:
        key.record("unknown")
        log.warning("novita_key_unchecked", error=describe(error)[:300])
    else:
        key.record("accepted")
        log.info("novita_key_accepted")


@dataclass
class Probe:
    at: datetime
    monotonic: float
    ok: bool
    reachable: bool
    error: str | None


@dataclass
class Backlog:
    due_rows: int
    oldest_due_at: datetime | None

    def oldest_age(self, now: datetime) -> float | None:
        if self.oldest_due_at is None:
            return None
        return round(max((now - self.oldest_due_at).total_seconds(), 0.0), 3)


class Deadlines:
    """Runs each named check as a task and waits for it at most `timeout` seconds.

    A check that overruns is left to finish on its own rather than cancelled: cancelling a
    database call stuck on a dead server took several seconds in tests (the pool cleans up under
    the cancellation), which would make the health check itself hang. Never two of one name run
    at once, so a hung database cannot pile up checks.
    """

    def __init__(self) -> None:
        self._tasks: dict[str, asyncio.Future[Any]] = {}

    async def run(self, name: str, make: Callable[[], Awaitable[T]], timeout: float) -> T:
        task = self._tasks.get(name)
        if task is None or task.done():
            task = asyncio.ensure_future(make())
            task.add_done_callback(_retrieve)
            self._tasks[name] = task
        done, _ = await asyncio.wait({task}, timeout=timeout)
        if not done:
            raise TimeoutError(f"{name} gave no answer within {timeout:g} s")
        result: T = task.result()
        return result


def _retrieve(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()  # an abandoned check's error is reported by the caller, not the loop


def describe(error: BaseException) -> str:
    if isinstance(error, TimeoutError):
        return str(error) or "no answer in time"
    text = str(error).splitlines()[0] if str(error) else ""
    return f"{type(error).__name__}: {text}"[:300]


async def backlog_of(runtime: Runtime, pipeline: Pipeline[Any]) -> Backlog:
    """Rows the pipeline would claim now (due and not leased) and the oldest one's due time."""
    table = cast(type[LeasedModel], pipeline.model)
    now = utcnow()
    due: ColumnElement[bool] = and_(
        table.next_attempt_at <= now,
        or_(table.lock_expires_at.is_(None), table.lock_expires_at <= now),
    )
    if pipeline.due_filter is not None:
        due = and_(due, pipeline.due_filter)
    query = select(func.count(), func.min(table.next_attempt_at)).where(due)
    async with runtime.db.read_session() as session:
        count, oldest = (await session.execute(query)).one()
    return Backlog(int(count or 0), oldest)


async def instances_by_status(runtime: Runtime) -> dict[str, int]:
    """One GROUP BY over the indexed status column; every status is present (0 when none)."""
    counts = {status.value: 0 for status in Status}
    query = select(Instance.status, func.count()).group_by(Instance.status)
    async with runtime.db.read_session() as session:
        for status, count in (await session.execute(query)).all():
            counts[str(status)] = int(count)
    return counts


@dataclass(frozen=True, slots=True)
class PendingWebhooks:
    """Pending deliveries per destination (host:port): how many and the oldest commit time."""

    by_destination: dict[str, tuple[int, datetime]]

    def oldest(self) -> tuple[str, datetime] | None:
        if not self.by_destination:
            return None
        key = min(self.by_destination, key=lambda k: self.by_destination[k][1])
        return key, self.by_destination[key][1]


async def pending_webhooks(runtime: Runtime) -> PendingWebhooks:
    """One GROUP BY url over the pending deliveries (indexed status), folded by destination."""
    d = WebhookDelivery
    query = (
        select(d.url, func.count(), func.min(d.created_at))
        .where(d.status == "pending", d.url.is_not(None))
        .group_by(d.url)
    )
    folded: dict[str, tuple[int, datetime]] = {}
    async with runtime.db.read_session() as session:
        for url, count, oldest in (await session.execute(query)).all():
            key = destination_of(str(url))
            known = folded.get(key)
            if known is None:
                folded[key] = (int(count), oldest)
            else:
                folded[key] = (known[0] + int(count), min(known[1], oldest))
    return PendingWebhooks(folded)


def waiting_by_state(runtime: Runtime, pending: PendingWebhooks) -> dict[str, int]:
    """Pending deliveries by the breaker state of their destination in this process."""
    handler = runtime.webhook_pipeline.handler
    states = handler.destinations.snapshot() if isinstance(handler, WebhookDeliveryHandler) else {}
    counts: dict[str, int] = dict.fromkeys(STATES, 0)
    for key, (count, _) in pending.by_destination.items():
        counts[states.get(key, "closed")] += count
    return counts


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
            .where(WebhookDelivery.status == "failed", WebhookAttempt.attempted_at >= since)
        )
        retrying = select(func.count()).where(
            WebhookDelivery.status == "pending", WebhookDelivery.attempts > 0
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
