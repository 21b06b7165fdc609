"""The provisioning pipeline's handler: advances one managed instance by one step.

Each step is safe to repeat after a crash at any line:
- Create exactly once: `create_state` is set to `in_flight` (committed) before Novita's create is
  sent. A row found `in_flight` or `unknown` (a crash, a timeout, a dropped connection) first looks
  for the instance by name and our marker env var, adopts it when found, and only creates again
  when it is certainly absent. So one request never pays for two instances.
- Start, stop and delete are sent, then recorded; sending one twice is harmless upstream (an
  `invalid state change` or 404 answer is read as "already done", then re-read by the sync).
- A status change, its history entry and its webhook (the outbox row) commit in one transaction.
The status sync (`status_sync.py`) brings observations; `domain.lifecycle.decide` says what to do.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, select, update
from sqlalchemy.orm import aliased

from novita_manager.backoff import backoff_delay
from novita_manager.config import Settings
from novita_manager.domain import observations
from novita_manager.domain.lifecycle import Action, Decision, Snapshot, decide
from novita_manager.domain.offers import NoOffer, Offer
from novita_manager.domain.payloads import webhook_payload
from novita_manager.domain.regions import resolve_cluster
from novita_manager.domain.requests import (
    FINAL_STATES,
    Pending,
    RequestState,
    outcome_of,
    plan_requests,
)
from novita_manager.domain.statuses import (
    NOVITA_RUNNING,
    OPERATION_STATUS,
    Event,
    Operation,
    Status,
)
from novita_manager.engine.leases import Lease, LeaseLost, write_with_lease
from novita_manager.engine.retry import truncate_error
from novita_manager.logging import bound_context, get_logger
from novita_manager.novita.catalogue import Catalogue
from novita_manager.novita.client import NovitaClient
from novita_manager.novita.create_request import (
    UnacceptableName,
    build_create_request,
    carries_marker,
    novita_name,
)
from novita_manager.novita.errors import (
    NovitaError,
    NovitaInsufficientResource,
    NovitaInvalidStateChange,
    NovitaNotFound,
    NovitaOutcomeUnknown,
    is_transient,
)
from novita_manager.store.db import Database
from novita_manager.store.models import Instance, InstanceEvent, OperationRequest, WebhookDelivery
from novita_manager.store.types import utcnow
from novita_manager.store.views import instance_view

log = get_logger(__name__)

# A waiting row is rechecked after this many poll intervals even without news (a safety net:
# the status sync wakes it as soon as an observation needs a reaction).
RECHECK_INTERVALS = 10

# The timestamp column each status sets when it is reached.
_REACHED_AT = {
    Status.RUNNING: "ready_at",
    Status.FAILED: "failed_at",
    Status.STOPPED: "stopped_at",
    Status.DELETED: "deleted_at",
}


class IncompleteListing(Exception):
    """Novita's listing could not be proved complete, so absence proves nothing (a retry)."""


class Provisioner:
    """The handler of the provisioning pipeline (see the module docstring)."""

    def __init__(
        self,
        *,
        db: Database,
        client: NovitaClient,
        catalogue: Catalogue,
        settings: Settings,
        on_outbox: Callable[[], None] = lambda: None,
        on_upstream_change: Callable[[], None] = lambda: None,
    ) -> None:
        self.db = db
        self.client = client
        self.catalogue = catalogue
        self.settings = settings
        self.on_outbox = on_outbox  # wakes the webhook pipeline
        self.on_upstream_change = on_upstream_change  # asks the status sync for an early look

    async def __call__(self, lease: Lease, row: Instance) -> None:
        with bound_context(instance_id=row.id, request_id=row.request_id):
            try:
                await self.handle(lease, row)
            except NovitaError as error:
                if not is_transient(error):
                    raise  # a bug or an unexpected answer: the pipeline logs it with its trace
                await self._retry(lease, row, error)  # e.g. a 429 while looking for a create

    async def handle(self, lease: Lease, row: Instance) -> None:
        if row.request_seq > row.consumed_seq and not await self._take_requests(lease, row):
            return
        unknown_create = row.create_state in ("in_flight", "unknown")
        if (
            row.novita_instance_id is None
            and unknown_create
            and not await self._find_earlier_create(lease, row)
        ):
            return
        now = utcnow()
        decision = decide(
            _snapshot(row),
            now=now,
            timeout=self.settings.instance_startup_timeout,
            recheck_after=self.settings.instance_poll_interval * RECHECK_INTERVALS,
        )
        if decision.action is Action.CREATE:
            await self._create(lease, row)
        elif decision.action is Action.CALL:
            assert decision.call is not None
            await self._call(lease, row, decision.call)
        elif decision.action is Action.TRANSITION:
            await self._transition(lease, row, decision)
        elif decision.action is Action.WAIT:
            await self._wait(lease, row, decision.wait_seconds or 0.0)
        else:
            await self._write(lease, row, {"next_attempt_at": None}, release=True)

    # -- steps ---------------------------------------------------------------------------------

    async def _take_requests(self, lease: Lease, row: Instance) -> bool:
        """Resolve or take up the requests the API accepted, in order (domain.requests).

        Only requests read here are resolved, by seq, and `consumed_seq` moves past exactly
        those, so a request accepted meanwhile stays pending and wakes the row again.
        """
        joined = aliased(OperationRequest)
        async with self.db.session() as session:
            pending = (
                await session.execute(
                    select(
                        OperationRequest.seq,
                        OperationRequest.operation,
                        OperationRequest.webhook_url,
                        OperationRequest.joins_seq,
                        joined.state,
                        joined.reason,
                    )
                    .outerjoin(
                        joined,
                        and_(
                            joined.instance_id == OperationRequest.instance_id,
                            joined.seq == OperationRequest.joins_seq,
                        ),
                    )
                    .where(
                        OperationRequest.instance_id == row.id,
                        OperationRequest.seq > row.consumed_seq,
                        OperationRequest.state == RequestState.PENDING.value,
                    )
                    .order_by(OperationRequest.seq)
                )
            ).all()
        if not pending:  # e.g. a refusal rolled back after the bump was read
            return await self._write(lease, row, {"consumed_seq": row.request_seq}, release=False)
        under_way = Operation(row.operation) if row.operation else None
        plan = plan_requests(
            Status(row.status),
            under_way,
            row.novita_instance_id is not None,
            [
                Pending(seq, Operation(operation), _final_outcome(joined_state, reason), joins_seq)
                for seq, operation, _, joins_seq, joined_state, reason in pending
            ],
            row.consumed_seq,
        )
        now = utcnow()
        values: dict[str, Any] = {"consumed_seq": plan.consumed_seq}
        statements: list[Any] = []
        if plan.supersede_under_way is not None:
            statements.append(
                _resolve_in_progress(row.id, RequestState.SUPERSEDED, plan.supersede_under_way, now)
            )
        for seq, (state, reason) in plan.outcomes.items():
            resolved = None if state is RequestState.IN_PROGRESS else now
            statements.append(
                update(OperationRequest)
                .where(OperationRequest.instance_id == row.id, OperationRequest.seq == seq)
                .values(state=state.value, reason=reason, resolved_at=resolved)
            )
            if state is not RequestState.IN_PROGRESS:
                log.info("request_resolved", seq=seq, state=state.value, reason=reason)
        for seq, _, webhook_url, _, _, _ in pending:
            taken = plan.outcomes.get(seq, (None, None))[0] is RequestState.IN_PROGRESS
            if taken and webhook_url:
                values["webhook_url"] = webhook_url
        also: list[Any] = []
        if plan.adopt is not None:
            operation = plan.adopt.operation
            status = OPERATION_STATUS[operation]
            values.update(
                operation=operation.value,
                operation_started_at=now,
                operation_issued=False,
                operation_issued_at=None,
                status=status.value,
                failure_reason=None,
                attempts=0,
                last_error=None,
            )
            if operation is Operation.START:
                values["started_at"] = now
            reason = f"{operation.value} requested (#{plan.adopt.seq})"
            also.append(_history(row, status, reason, now))
        return await self._write(
            lease, row, values, release=False, also=also, statements=statements
        )

    async def _find_earlier_create(self, lease: Lease, row: Instance) -> bool:
        """After an unknown create outcome: adopt the instance it made, or learn there is none.

        "None" needs a listing proved complete (readings `page_base`, `page_size_cap`): from an
        incomplete one the row keeps `create_state` unknown and looks again later, and at the
        startup deadline a create fails safe without creating (the status sync keeps looking
        for a late instance with our marker and deletes it). Returns whether to go on.
        """
        try:
            name = novita_name(row.name)
        except UnacceptableName:
            name = row.name  # no create can have been sent under this name
        listing = await self.client.list_all_instances(name=name)
        found = next(
            (
                candidate
                for candidate in listing.instances
                if carries_marker(candidate.envs, row.id)
            ),
            None,
        )
        if found is None and listing.complete:
            log.info("earlier_create_not_found", create_attempts=row.create_attempts)
            return await self._write(lease, row, {"create_state": "pending"}, release=False)
        if found is None:
            log.warning(
                "earlier_create_search_incomplete",
                seen=len(listing.instances),
                total=listing.progress.total,
            )
            started = row.operation_started_at or row.created_at
            late = (utcnow() - started).total_seconds() > self.settings.instance_startup_timeout
            if late and row.operation != Operation.CREATE.value:
                return True  # e.g. a delete: go on; a late instance is swept as a stray
            if late:
                await self._fail(
                    lease,
                    row,
                    "the outcome of a create is unknown and Novita's listing could not be proved "
                    "complete before the startup timeout; not creating again",
                    extra={"create_state": "unknown"},
                )
                return False
            await self._retry(
                lease,
                row,
                IncompleteListing(
                    "looking for an earlier create: Novita's listing was not proved complete "
                    f"({len(listing.instances)} of {listing.progress.total} seen); will look again"
                ),
                extra={"create_state": "unknown"},
            )
            return False
        log.warning("adopting_instance_from_unknown_create", novita_instance_id=found.id)
        now = utcnow()
        values: dict[str, Any] = {
            "novita_instance_id": found.id,
            "create_state": "done",
            "novita_status": found.status or None,
            "observation": observations.merge(row.observation, observations.summarize(found), now),
            "observed_at": now,
        }
        also = []
        if row.operation == Operation.CREATE.value:
            values["status"] = Status.STARTING.value
            also.append(_history(row, Status.STARTING, "adopted after an unknown create", now))
        return await self._write(lease, row, values, release=False, also=also)

    async def _create(self, lease: Lease, row: Instance) -> None:
        """Create on Novita with the cheapest offer; on a capacity refusal (by reason or message,
        readings `capacity_error`) the next-cheapest offer in the region, before failing."""
        now = utcnow()
        started = row.operation_started_at or row.created_at
        if (now - started).total_seconds() > self.settings.instance_startup_timeout:
            reason = row.last_error or "Novita could not be reached"
            await self._fail(lease, row, f"instance was not created in time: {reason}")
            return
        try:
            offers = await self._offers(row)
            template = await self.catalogue.template(row.template_id)
        except NoOffer as no_offer:
            await self._fail(lease, row, no_offer.message)
            return
        except NovitaError as error:
            if is_transient(error):
                await self._retry(lease, row, error)
            else:
                await self._fail(lease, row, f"template {row.template_id!r}: {error.message}")
            return
        refused: list[str] = []
        for offer in offers:
            try:
                request = build_create_request(
                    instance_id=row.id,
                    name=row.name,
                    gpu_num=row.gpu_num,
                    rootfs_size=row.rootfs_size,
                    offer=offer,
                    template=template,
                )
            except UnacceptableName as bad_name:
                await self._fail(lease, row, str(bad_name))
                return
            marked = await self._write(
                lease,
                row,
                {
                    "create_state": "in_flight",
                    "create_attempts": row.create_attempts + 1,
                    "product_id": offer.product_id,
                    "cluster_id": offer.cluster_id,
                    "price_per_hour": offer.instance_price(row.gpu_num),
                },
                release=False,
            )
            if not marked:
                return
            try:
                novita_id = await self.client.create_instance(request)
            except NovitaOutcomeUnknown as error:
                log.warning("create_outcome_unknown", error=str(error))
                await self._retry(lease, row, error, extra={"create_state": "unknown"})
                return
            except NovitaInsufficientResource as error:
                # Refused, so nothing was created: the next offer may have room.
                log.info(
                    "create_refused_for_capacity",
                    product_id=offer.product_id,
                    cluster_id=offer.cluster_id,
                    error=str(error),
                )
                refused.append(f"{offer.product_id} in {offer.cluster_id}: {error.message}")
                if not await self._write(lease, row, {"create_state": "pending"}, release=False):
                    return
                continue
            except NovitaError as error:
                if is_transient(error):  # refused before it was processed: nothing was created
                    await self._retry(lease, row, error, extra={"create_state": "pending"})
                else:
                    await self._fail(
                        lease,
                        row,
                        f"Novita rejected the create: {error}",
                        extra={"create_state": "pending"},
                    )
                return
            await self._created(lease, row, novita_id, offer, refused)
            return
        await self._fail(
            lease,
            row,
            "no offer in the region has capacity (INSUFFICIENT_RESOURCE): " + "; ".join(refused),
            extra={"create_state": "pending"},
        )

    async def _created(
        self, lease: Lease, row: Instance, novita_id: str, offer: Offer, refused: list[str]
    ) -> None:
        """Record the created instance and the offer it was created with (history and log)."""
        now = utcnow()
        price = offer.instance_price(row.gpu_num)
        reason = (
            f"created on Novita: {offer.product_id} in {offer.cluster_id}, "
            f"{offer.billing_mode} at ${price:g}/h"
        )
        if refused:
            reason += (
                f" (the next-cheapest offer: {len(refused)} refused for capacity: "
                + "; ".join(refused)
                + ")"
            )
        log.info(
            "instance_created_upstream",
            novita_instance_id=novita_id,
            product_id=offer.product_id,
            cluster_id=offer.cluster_id,
            price_per_hour=price,
            offers_refused=len(refused),
        )
        await self._write(
            lease,
            row,
            {
                "novita_instance_id": novita_id,
                "create_state": "done",
                "status": Status.STARTING.value,
                "operation_issued_at": now,
                "attempts": 0,
                "last_error": None,
                "next_attempt_at": now + timedelta(seconds=self.settings.instance_poll_interval),
            },
            release=True,
            also=[_history(row, Status.STARTING, reason, now)],
        )
        self.on_upstream_change()

    async def _offers(self, row: Instance) -> list[Offer]:
        """The offers to try, in order: the one chosen when the request was accepted (its price
        was quoted) first, then every other offer in the region, cheapest first.

        Products are listed with the request's billing method and the region's cluster
        (readings `products_default_billing`, `product_ids`), so availability is the cluster's.
        When the catalogue cannot be reached, the chosen offer alone is tried.
        """
        chosen: Offer | None = None
        if row.product_id and row.cluster_id and row.price_per_hour is not None:
            chosen = Offer(
                product_id=row.product_id,
                product_name=row.product_name,
                cluster_id=row.cluster_id,
                price_per_gpu_hour=row.price_per_hour / max(row.gpu_num, 1),
                billing_mode=row.billing_mode,
            )
        try:
            cluster = resolve_cluster(row.region, await self.catalogue.clusters())
            if cluster is None:
                raise NoOffer("unknown_region", f"Unknown region {row.region!r}")
            ranked = await self.catalogue.ranked_offers(
                product_name=row.product_name,
                cluster=cluster,
                billing_mode=row.billing_mode,
                rootfs_size=row.rootfs_size,
            )
        except (NoOffer, NovitaError) as error:
            if chosen is None or (isinstance(error, NovitaError) and not is_transient(error)):
                raise
            return [chosen]
        if chosen is None:
            return ranked
        others = [
            offer
            for offer in ranked
            if (offer.product_id, offer.cluster_id) != (chosen.product_id, chosen.cluster_id)
        ]
        return [chosen, *others]

    async def _call(self, lease: Lease, row: Instance, operation: Operation) -> None:
        assert row.novita_instance_id is not None
        send = {
            Operation.START: self.client.start_instance,
            Operation.STOP: self.client.stop_instance,
            Operation.DELETE: self.client.delete_instance,
        }[operation]
        values: dict[str, Any] = {}
        try:
            try:
                await send(row.novita_instance_id)
            except NovitaInsufficientResource:
                if operation is not Operation.START:
                    raise
                # The node's GPUs went to someone else while it was stopped (a reclaimed spot
                # instance, a long stop): Novita's remedy is to migrate, which also starts it.
                log.info("start_refused_for_capacity_migrating")
                await self.client.migrate_instance(row.novita_instance_id)
        except NovitaInvalidStateChange:
            log.info("upstream_invalid_state_change_rereading", operation=operation.value)
        except NovitaNotFound:
            values.update(observation=observations.gone(), observed_at=utcnow())
        except NovitaError as error:
            if is_transient(error):
                await self._retry(lease, row, error)
            else:
                await self._fail(lease, row, f"Novita refused {operation.value}: {error}")
            return
        now = utcnow()
        values.update(
            operation_issued=True,
            operation_issued_at=now,
            last_error=None,
            next_attempt_at=(
                now
                if "observation" in values
                else now + timedelta(seconds=self.settings.instance_poll_interval)
            ),
        )
        await self._write(lease, row, values, release=True)
        self.on_upstream_change()

    async def _transition(self, lease: Lease, row: Instance, decision: Decision) -> None:
        assert decision.to_status is not None
        if decision.to_status is Status.FAILED:
            await self._fail(lease, row, decision.reason or "failed")
            return
        extra: dict[str, Any] | None = None
        if decision.to_status is Status.RUNNING and row.novita_instance_id is not None:
            extra = await self._details(lease, row)
            if extra is None:
                return
        await self._finish(lease, row, decision.to_status, decision.event, decision.reason, extra)

    async def _details(self, lease: Lease, row: Instance) -> dict[str, Any] | None:
        """Connection details from one GET of an instance that reached running.

        List items may lack endpoints and connectComponent* (readings `list_shape`), so the
        running webhook and the view take them from the instance itself. Returns the values to
        write with the transition, or None when the step ended otherwise (the GET failed, or
        showed the instance no longer running: then that observation is written and the row
        decides again at once).
        """
        assert row.novita_instance_id is not None
        now = utcnow()
        try:
            instance = await self.client.get_instance(row.novita_instance_id)
        except NovitaNotFound:
            observation = observations.gone()
        except NovitaError as error:
            if not is_transient(error):
                raise
            await self._retry(lease, row, error)
            return None
        else:
            observation = observations.merge(row.observation, observations.summarize(instance), now)
        values: dict[str, Any] = {
            "observation": observation,
            "observed_at": now,
            "novita_status": observation.get("status"),
            "port_mappings": observation.get("portMappings", []),
            "connection_details": observation.get("connectionDetails", {}),
            "cluster_id": observation.get("clusterId") or row.cluster_id,
        }
        if observation.get("status") != NOVITA_RUNNING or observation.get("gone"):
            await self._write(lease, row, {**values, "next_attempt_at": now}, release=True)
            return None
        return values

    async def _fail(
        self, lease: Lease, row: Instance, reason: str, extra: dict[str, Any] | None = None
    ) -> None:
        log.warning("instance_failed", reason=reason)
        await self._finish(lease, row, Status.FAILED, Event.FAILED, reason, extra)

    async def _finish(
        self,
        lease: Lease,
        row: Instance,
        status: Status,
        event: Event | None,
        reason: str | None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        """Reach a resting status: history, webhook and the row change in one transaction."""
        now = utcnow()
        values: dict[str, Any] = {
            "status": status.value,
            "operation": None,
            "operation_issued": False,
            "operation_issued_at": None,
            "next_attempt_at": None,
            "attempts": 0,
            "updated_at": now,
            _REACHED_AT[status]: now,
            **(extra or {}),
        }
        error = None
        if status is Status.FAILED:
            values["failure_reason"] = error = truncate_error(reason or "failed")
        elif status is Status.RUNNING:
            values["last_error"] = None
            values["failure_reason"] = None
        also: list[Any] = [_history(row, status, reason, now)]
        statements: list[Any] = []
        if row.operation is not None and row.operation != Operation.CREATE.value:
            outcome = outcome_of(Operation(row.operation), status)
            why = None if outcome is RequestState.SUCCEEDED else (reason or status.value)
            statements.append(_resolve_in_progress(row.id, outcome, why, now))
        if event is not None:
            after = _apply(row, values)
            payload = webhook_payload(
                event.value,
                instance_view(after, stale=False),
                now=now,
                created_at=row.created_at,
                error=error,
            )
            also.append(_delivery(row, event, payload, now))
            if not row.webhook_url:
                log.info("webhook_skipped_no_url", event_type=event.value)
        if await self._write(lease, row, values, release=True, also=also, statements=statements):
            log.info("instance_status", status=status.value, reason=reason)
            if event is not None:
                self.on_outbox()

    async def _wait(self, lease: Lease, row: Instance, seconds: float) -> None:
        """Sleep until the next observation or the deadline; wake at once if one arrived."""
        now = utcnow()
        later = now + timedelta(seconds=max(seconds, 0.0))
        seen = row.observed_at
        newer = Instance.observed_at.is_not(None) if seen is None else Instance.observed_at > seen
        await self._write(
            lease, row, {"next_attempt_at": case((newer, now), else_=later)}, release=True
        )

    async def _retry(
        self,
        lease: Lease,
        row: Instance,
        error: BaseException,
        extra: dict[str, Any] | None = None,
    ) -> None:
        delay = backoff_delay(row.attempts, self.settings.retry_backoff_base or 0.1, 60.0)
        retry_after = getattr(error, "retry_after", None)
        if isinstance(retry_after, int | float):
            delay = max(delay, float(retry_after))
        values = {
            "attempts": row.attempts + 1,
            "last_error": truncate_error(str(error)),
            "next_attempt_at": utcnow() + timedelta(seconds=delay),
            **(extra or {}),
        }
        log.info("step_retry", error=str(error), delay=round(delay, 3))
        await self._write(lease, row, values, release=True)

    async def _write(
        self,
        lease: Lease,
        row: Instance,
        values: dict[str, Any],
        *,
        release: bool,
        also: list[Any] | None = None,
        statements: list[Any] | None = None,
    ) -> bool:
        """Write under the lease with `also` (rows to add) and `statements` in the same
        transaction; mirror the values on `row`.

        A release never puts a row to sleep past a request accepted meanwhile: its
        `next_attempt_at` becomes now when `request_seq` (read by the UPDATE itself, so also on
        PostgreSQL after waiting for the API's row lock) is past what this worker consumed.
        """
        now = utcnow()
        values.setdefault("updated_at", now)
        sql_values = dict(values)
        if release and "next_attempt_at" in values:
            consumed = values.get("consumed_seq", row.consumed_seq)
            sql_values["next_attempt_at"] = case(
                (Instance.request_seq > consumed, now), else_=values["next_attempt_at"]
            )
        try:
            async with self.db.session() as session, session.begin():
                held = await write_with_lease(session, Instance, lease, sql_values, release=release)
                if not held:
                    raise LeaseLost
                session.add_all(also or [])
                for statement in statements or []:
                    await session.execute(statement)
        except LeaseLost:
            log.warning("lease_lost_result_dropped")
            return False
        for key, value in values.items():
            if not _is_sql(value):
                setattr(row, key, value)
        return True


def _is_sql(value: Any) -> bool:
    return hasattr(value, "compile")


def _snapshot(row: Instance) -> Snapshot:
    return Snapshot(
        status=Status(row.status),
        operation=Operation(row.operation) if row.operation else None,
        operation_issued=row.operation_issued,
        operation_started_at=row.operation_started_at,
        operation_issued_at=row.operation_issued_at,
        has_upstream=row.novita_instance_id is not None,
        observation=row.observation,
        observed_at=row.observed_at,
    )


def _apply(row: Instance, values: dict[str, Any]) -> Instance:
    """A detached copy of `row` with `values` applied, for building the webhook's view."""
    copy = Instance(**{column.key: getattr(row, column.key) for column in Instance.__table__.c})
    for key, value in values.items():
        if not _is_sql(value):
            setattr(copy, key, value)
    return copy


def _final_outcome(state: str | None, reason: str | None) -> tuple[RequestState, str | None] | None:
    """The outcome of a joined request if it is final (else the joiner waits its turn)."""
    if state is None or RequestState(state) not in FINAL_STATES:
        return None
    return RequestState(state), reason


def _resolve_in_progress(
    instance_id: str, state: RequestState, reason: str | None, at: datetime
) -> Any:
    """Give every request the operation under way serves its outcome."""
    return (
        update(OperationRequest)
        .where(
            OperationRequest.instance_id == instance_id,
            OperationRequest.state == RequestState.IN_PROGRESS.value,
        )
        .values(state=state.value, reason=reason and truncate_error(reason), resolved_at=at)
    )


def _history(row: Instance, status: Status, reason: str | None, at: datetime) -> InstanceEvent:
    return InstanceEvent(
        instance_id=row.id,
        at=at,
        from_status=row.status,
        to_status=status.value,
        novita_status=row.novita_status,
        reason=reason,
    )


def _delivery(
    row: Instance, event: Event, payload: dict[str, Any], now: datetime
) -> WebhookDelivery:
    url = row.webhook_url
    return WebhookDelivery(
        id=f"msg_{uuid.uuid4().hex}",
        instance_id=row.id,
        event_type=event.value,
        url=url,
        payload=payload,
        status="pending" if url else "skipped",
        created_at=now,
        next_attempt_at=now if url else None,
        attempts=0,
    )
