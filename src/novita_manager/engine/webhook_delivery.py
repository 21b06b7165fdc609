"""The webhook delivery pipeline: outbox rows (`WebhookDelivery`, status "pending") become signed
HTTP requests, each attempt recorded.

One step of a claimed row: encode the stored payload (the contract body, written by the lifecycle
in the same transaction as the state change), sign it with the delivery id as `webhook-id` and a
fresh `webhook-timestamp`, send one attempt outside any transaction, then in ONE transaction under
the lease insert the `WebhookAttempt` and move the row on:

- delivered: status "delivered", `delivered_at`, `next_attempt_at` NULL;
- retryable failure with retries left: still "pending", `attempts`+1, `next_attempt_at` = now +
  `webhook_retry_base`·2^(n-1) with ±20 % jitter, or the receiver's `Retry-After`;
- otherwise (not retryable, refused by the SSRF guard, retries exhausted): status "failed".

`attempts` counts HTTP attempts since the row was (re)queued; at most 1 + `webhook_max_retries`.
A row without a URL (no webhook configured) is marked "skipped" and logged; the lifecycle may also
insert it as "skipped" directly, which this pipeline never sees.

Ordering: an earlier pending delivery (by `created_at`, then id) of the same instance to the
same URL goes first. The claim itself sees to it (`NO_EARLIER_PENDING`, a NOT EXISTS on the
indexed instance id): a row is not claimed while an earlier one of its instance and URL is
pending, in flight or waiting for a retry (a read per claimed row, and a deferral per blocked
one, cost more than the whole attempt on the lifecycle benchmark). When a delivery finishes
(delivered or failed), its successors are made due in the same transaction that records it.

Isolation (issue 20): the pipeline runs `WEBHOOK_MAX_IN_FLIGHT` workers (asyncio tasks; the
global cap), and before sending a row must pass its destination's gate, which, when shut,
*defers* the row (writes a later `next_attempt_at` under the lease and releases it; no attempt
is counted, so the row holds no slot while it waits):

- its destination (`webhook_destinations`): at most `WEBHOOK_MAX_IN_FLIGHT_PER_HOST` attempts to
  one host:port at once, and a breaker that, after consecutive failures, keeps the destination's
  rows waiting and lets one probe decide when it is back. While the destination is flowing
  (slots freed within the last second), a row at its cap first waits in memory, briefly, for a
  slot, instead of a deferral write, a pull-forward write and another claim.

Crash safety: when the process dies after sending and before recording, nothing is written; the
lease expires and the still-pending row is sent again with the same `webhook-id`. Delivery is at
least once; receivers deduplicate by `webhook-id`. A result whose lease was lost is dropped.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import ColumnElement, Update, and_, bindparam, or_, select, update
from sqlalchemy.orm import aliased

from novita_manager.config import Settings
from novita_manager.domain.statuses import DeliveryStatus
from novita_manager.engine.group_commit import Batch, GroupCommit
from novita_manager.engine.leases import Lease, write_with_lease
from novita_manager.engine.pipeline import Pipeline
from novita_manager.engine.webhook_destinations import Destinations, destination_of
from novita_manager.engine.webhook_outcome import MAX_BACKOFF, attempt_row, encode_body, next_step
from novita_manager.logging import get_logger
from novita_manager.metrics import Metrics
from novita_manager.store.db import Database
from novita_manager.store.models import WebhookDelivery
from novita_manager.store.types import utcnow
from novita_manager.webhooks.sender import WebhookSender
from novita_manager.webhooks.signing import WebhookSigner

PIPELINE_NAME = "webhook_delivery"
IS_PENDING = WebhookDelivery.status == DeliveryStatus.PENDING.value
_TABLE: Any = WebhookDelivery.__table__
# Built once (a Core statement, its values as parameters): per delivery it cost as much as the
# rest of the delivery's write.
_SUCCESSORS_NOW = (
    update(_TABLE)
    .where(
        _TABLE.c.instance_id == bindparam("s_instance"),
        _TABLE.c.url == bindparam("s_url"),
        _TABLE.c.status == DeliveryStatus.PENDING.value,
        _TABLE.c.id != bindparam("s_id"),
        _TABLE.c.lock_token.is_(None),
        _TABLE.c.next_attempt_at > bindparam("s_now", type_=_TABLE.c.next_attempt_at.type),
    )
    .values(next_attempt_at=bindparam("s_now"))
)
_EARLIER = aliased(WebhookDelivery)
# No earlier pending delivery of the same instance to the same URL (the claim's ordering rule).
NO_EARLIER_PENDING = ~(
    select(_EARLIER.id)
    .where(
        _EARLIER.instance_id == WebhookDelivery.instance_id,
        _EARLIER.url == WebhookDelivery.url,
        _EARLIER.status == DeliveryStatus.PENDING.value,
        or_(
            _EARLIER.created_at < WebhookDelivery.created_at,
            and_(
                _EARLIER.created_at == WebhookDelivery.created_at,
                _EARLIER.id < WebhookDelivery.id,
            ),
        ),
    )
    .exists()
)
# Seconds a record waits for others while records stream in (`GroupCommit`; the webhook has
# arrived, only the lease waits): a burst's were 14 per 3.2 ms commit, 2.2 ms of it fixed.
RECORD_LINGER = 0.05
log = get_logger(__name__)


def waiters_per_destination(settings: Settings) -> int:
    """Rows that may wait in memory for one flowing destination's slot: all the workers but four
    destinations' worth (128 of 256 by default). The pipeline claims up to all its workers' worth
    of rows at once; with 64 waiters and 16 slots per destination, a burst of 1,000 events to one
    receiver deferred 0.46 rows per event (`bench.burst`: a deferral write, a pull-forward write
    and a second claim each, and the last webhooks 2 s later); with 32 slots and these waiters,
    none. Waiters wait only while the destination flows (a slot freed within `FLOW_WINDOW`), so a
    receiver that starts to hang holds them at most that long plus `MAX_WAIT`, and the other
    destinations keep four caps' worth of workers throughout."""
    workers = settings.webhook_max_in_flight
    return max(64, workers - 4 * settings.webhook_max_in_flight_per_host)


class WebhookDeliveryHandler:
    """The pipeline handler: one attempt of one claimed delivery (see the module docstring)."""

    def __init__(
        self, *, db: Database, settings: Settings, metrics: Metrics, sender: WebhookSender
    ) -> None:
        self.db = db
        self.settings = settings
        self.metrics = metrics
        self.sender = sender
        secret = settings.webhook_secret
        self.signer = WebhookSigner(secret.get_secret_value() if secret else None)
        self.destinations = Destinations(
            per_host_cap=settings.webhook_max_in_flight_per_host,
            threshold=settings.webhook_breaker_threshold,
            cooldown=settings.webhook_breaker_cooldown,
            park_for=settings.webhook_timeout + 1.0,
            max_waiters=waiters_per_destination(settings),
        )
        self.wake: Callable[[], None] = lambda: None  # the pipeline's hint, set by the builder
        # Results and deferrals of concurrent attempts share transactions (group_commit.py).
        self.commits = GroupCommit(db, model=WebhookDelivery, linger=RECORD_LINGER)

    async def __call__(self, lease: Lease, row: WebhookDelivery) -> None:
        if row.status != DeliveryStatus.PENDING:
            return  # the pipeline releases the lease; nothing to do
        if row.url is None:
            await self._skip(lease, row)
            return
        key = destination_of(row.url)
        admission = await self.destinations.admit_or_wait(key, row.id)
        if not admission.admitted:
            await self._defer(lease, row, admission.wait, admission.reason)
            return
        slot = _Slot(self.destinations, key, admission.probe)
        try:
            await self._attempt(lease, row, row.url, slot)
        finally:
            slot.release(answered=None)  # only if the attempt raised before its answer
        if slot.pulled:
            await self._pull_forward(WebhookDelivery.id.in_(slot.pulled))

    async def _attempt(self, lease: Lease, row: WebhookDelivery, url: str, slot: _Slot) -> None:
        """Send once and record it. The destination's slot is given back as soon as the
        exchange ends, before the record is written: it counts attempts in flight to the
        receiver, and holding it through a busy group commit capped a burst's deliveries to
        one receiver at 4 per commit latency (measured: the queue to the first attempt was
        1 s at p50 for a burst of 1,000)."""
        probe = slot.probe
        body = encode_body(row.payload)
        started_at = utcnow()
        headers = self.signer.headers(row.id, started_at, body)
        result = await self.sender.send(
            url,
            body,
            headers,
            timeout=self.settings.webhook_timeout,
            allow_private=self.settings.webhook_allow_private,
        )
        now = utcnow()
        outcome, values = next_step(
            row.attempts,
            result,
            now,
            max_retries=self.settings.webhook_max_retries,
            retry_base=self.settings.webhook_retry_base,
        )
        attempt = attempt_row(row.id, started_at, result)
        if result.refused:
            answered: bool | None = None
        elif result.status_code is not None:
            answered = not result.retryable
        else:
            answered = False if result.retryable else None
        slot.release(answered=answered)

        async def record(batch: Batch) -> bool:
            session = batch.session
            if not await write_with_lease(session, WebhookDelivery, lease, values, release=True):
                return False
            batch.insert(attempt)
            if values["next_attempt_at"] is None:  # done: the instance's next event may go
                batch.later(*self._successors_now(row, now))
            return True

        if not await self.commits.run(record, key=lease.row_id, lease=lease):
            log.warning("webhook_result_dropped", delivery_id=row.id, reason="lease lost")
            return
        if values["next_attempt_at"] is None:
            self.wake()
        self.metrics.webhook_deliveries.labels(outcome).inc()
        if row.attempts == 0 and row.last_error is None:  # the event's first attempt
            lag = (started_at - row.created_at).total_seconds()
            self.metrics.webhook_lag.labels(outcome).observe(max(lag, 0.0))
        log.info(
            "webhook_attempt",
            delivery_id=row.id,
            event_type=row.event_type,
            instance_id=row.instance_id,
            host=urlsplit(url).hostname,
            outcome=outcome,
            probe=probe,
            attempt=values["attempts"],
            status_code=result.status_code,
            error=result.error,
            duration_ms=result.duration_ms,
        )

    @staticmethod
    def _successors_now(row: WebhookDelivery, now: datetime) -> tuple[Update, dict[str, Any]]:
        """The instance's later deliveries to the same URL, made due now (with parameters)."""
        parameters = {"s_instance": row.instance_id, "s_url": row.url, "s_id": row.id, "s_now": now}
        return _SUCCESSORS_NOW, parameters

    async def _defer(self, lease: Lease, row: WebhookDelivery, wait: float, reason: str) -> None:
        """Put the row back, due after `wait` seconds, without an attempt; it holds no slot."""
        values = {"next_attempt_at": utcnow() + timedelta(seconds=wait)}
        if not await self.commits.run(
            self._release_with(lease, values), key=lease.row_id, lease=lease
        ):
            return
        self.metrics.webhook_deferrals.labels(reason).inc()

    @staticmethod
    def _release_with(lease: Lease, values: dict[str, Any]) -> Callable[[Batch], Awaitable[bool]]:
        """A unit writing `values` and releasing the lease (False: the lease was lost)."""

        async def unit(batch: Batch) -> bool:
            return await write_with_lease(
                batch.session, WebhookDelivery, lease, values, release=True
            )

        return unit

    async def _pull_forward(self, which: ColumnElement[bool]) -> None:
        """Make parked rows due now (those not claimed meanwhile) and wake the pipeline."""
        d, now = WebhookDelivery, utcnow()
        statement = (
            update(d)
            .where(which, IS_PENDING, d.lock_token.is_(None), d.next_attempt_at > now)
            .values(next_attempt_at=now)
            .execution_options(synchronize_session=False)
        )
        try:
            async with self.db.session() as session, session.begin():
                await session.execute(statement)
        except Exception:
            log.exception("webhook_pull_forward_failed")  # they become due on their own
            return
        self.wake()

    async def _skip(self, lease: Lease, row: WebhookDelivery) -> None:
        skipped = DeliveryStatus.SKIPPED.value
        values = {"status": skipped, "next_attempt_at": None, "last_error": None}
        if not await self.commits.run(
            self._release_with(lease, values), key=lease.row_id, lease=lease
        ):
            return
        self.metrics.webhook_deliveries.labels("skipped").inc()
        log.info(
            "webhook_skipped",
            delivery_id=row.id,
            event_type=row.event_type,
            instance_id=row.instance_id,
            reason="no webhook URL configured",
        )


class _Slot:
    """A destination slot taken by `admit`, given back once (with what the attempt showed)."""

    __slots__ = ("destinations", "key", "probe", "pulled", "released")

    def __init__(self, destinations: Destinations, key: str, probe: bool) -> None:
        self.destinations, self.key, self.probe = destinations, key, probe
        self.pulled: list[str] = []
        self.released = False

    def release(self, *, answered: bool | None) -> None:
        if self.released:
            return
        self.released = True
        self.pulled = self.destinations.release(self.key, answered=answered, probe=self.probe)


def build_webhook_pipeline(
    db: Database,
    settings: Settings,
    metrics: Metrics,
    owner: str | None = None,
    *,
    sender: WebhookSender | None = None,
) -> Pipeline[WebhookDelivery]:
    """The delivery pipeline over pending deliveries.

    Pass the runtime's `WebhookSender` and close it after `pipeline.stop()`; without one a sender
    is created and reachable (for closing) as `pipeline.handler.sender`.
    """
    handler = WebhookDeliveryHandler(
        db=db, settings=settings, metrics=metrics, sender=sender or WebhookSender()
    )
    pipeline: Pipeline[WebhookDelivery] = Pipeline(
        name=PIPELINE_NAME,
        db=db,
        model=WebhookDelivery,
        handler=handler,
        due_filter=and_(IS_PENDING, NO_EARLIER_PENDING),
        workers=settings.webhook_max_in_flight,
        batch_size=min(settings.webhook_max_in_flight, 64),
        lease_seconds=settings.lease_seconds,
        owner=owner,
        metrics=metrics,
        retry_base=max(settings.webhook_retry_base, 0.05),
        retry_cap=MAX_BACKOFF,
    )
    handler.wake = pipeline.hint
    return pipeline


def webhook_sender_of(pipeline: Pipeline[WebhookDelivery]) -> WebhookSender:
    """The sender a pipeline built by `build_webhook_pipeline` uses (to close it on shutdown)."""
    handler = pipeline.handler
    assert isinstance(handler, WebhookDeliveryHandler)
    return handler.sender
