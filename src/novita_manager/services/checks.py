"""The reads behind /health and /metrics, each one bounded query, and the deadline runner that
keeps a hung dependency from hanging the health check itself."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar, cast

from sqlalchemy import ColumnElement, and_, func, or_, select

from novita_manager.domain.statuses import DeliveryStatus, Status
from novita_manager.engine.leases import LeasedModel
from novita_manager.engine.pipeline import Pipeline
from novita_manager.engine.webhook_delivery import WebhookDeliveryHandler
from novita_manager.engine.webhook_destinations import STATES, destination_of
from novita_manager.store.models import Instance, WebhookDelivery
from novita_manager.store.types import utcnow

if TYPE_CHECKING:
    from novita_manager.services.runtime import Runtime

T = TypeVar("T")


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
        .where(d.status == DeliveryStatus.PENDING, d.url.is_not(None))
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
