"""Use cases of the instances API: create, get, list, start, stop, delete.

The API only writes intentions to the database and wakes the provisioning pipeline; all upstream
side effects happen in the pipeline, so a request is never lost to a crash or an upstream outage.
A create checks what it can check at once (region, product, offer, template) while the catalogue
is reachable, and is accepted anyway when it is not.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, or_, select, update

from novita_manager.domain.offers import NoOffer, Offer
from novita_manager.domain.regions import resolve_cluster
from novita_manager.domain.requests import RequestState, acceptance_refusal
from novita_manager.domain.statuses import OPERATION_STATUS, Operation, Status
from novita_manager.domain.views import InstanceView
from novita_manager.errors import InstanceNotFound, InvalidState, ValidationFailed
from novita_manager.logging import current_request_id, get_logger
from novita_manager.novita.create_request import UnacceptableName, novita_name
from novita_manager.novita.errors import NovitaError, is_transient
from novita_manager.services import idempotency
from novita_manager.services.inputs import CreateInstanceBody
from novita_manager.store.models import Instance, InstanceEvent, OperationRequest
from novita_manager.store.types import utcnow
from novita_manager.store.views import instance_view, operation_view
from novita_manager.webhooks.ssrf import WebhookUrlRefused, validate_webhook_url

if TYPE_CHECKING:
    from novita_manager.services.runtime import Runtime

log = get_logger(__name__)

CATALOGUE_CHECK_TIMEOUT = 5.0  # then accept and check in the background
TYPICAL_STARTUP = timedelta(minutes=3)


@dataclass(frozen=True)
class Created:
    status_code: int
    body: dict[str, Any]
    instance_id: str


class _KeyTaken(Exception):
    """A concurrent request with the same Idempotency-Key committed first."""


def new_instance_id() -> str:
    return uuid.uuid4().hex


def _field_error(field: str, message: str) -> ValidationFailed:
    return ValidationFailed(message, details=[{"field": field, "message": message}])


def check_webhook_url(runtime: Runtime, url: str | None, field: str = "webhookUrl") -> None:
    if url is None:
        return
    try:
        validate_webhook_url(url, allow_private=runtime.settings.webhook_allow_private)
    except WebhookUrlRefused as refused:
        raise _field_error(field, f"webhook URL refused: {refused}") from None


async def _check_catalogue(runtime: Runtime, body: CreateInstanceBody, region: str) -> Offer | None:
    """Resolve the offer and the template now; None when the catalogue cannot be reached.

    Errors the user can fix (unknown region, product or template, no offer) are raised as 400.
    """
    catalogue = runtime.catalogue
    try:
        async with asyncio.timeout(CATALOGUE_CHECK_TIMEOUT):
            clusters = await catalogue.clusters()
            cluster = resolve_cluster(region, clusters)
            if cluster is None:
                known = ", ".join(sorted(c.name or c.id for c in clusters))
                raise _field_error("region", f"Unknown region {region!r} (known regions: {known})")
            try:
                [offer, *_] = await catalogue.ranked_offers(
                    product_name=body.productName,
                    cluster=cluster,
                    billing_mode=body.billingMode,
                    rootfs_size=body.rootfsSize,
                )
            except NoOffer as no_offer:
                field = {"unknown_product": "productName", "rootfs_out_of_range": "rootfsSize"}
                raise _field_error(field.get(no_offer.kind, "region"), no_offer.message) from None
            try:
                await catalogue.template(str(body.templateId))
            except NovitaError as error:
                if is_transient(error):
                    raise
                raise _field_error(
                    "templateId", f"Unknown template {body.templateId!r}: {error.message}"
                ) from None
            return offer
    except (TimeoutError, NovitaError) as error:
        if isinstance(error, NovitaError) and not is_transient(error):
            raise
        log.warning("catalogue_unreachable_accepting_anyway", error=str(error))
        return None


async def create_instance(
    runtime: Runtime, body: CreateInstanceBody, idempotency_key: str | None
) -> Created:
    settings = runtime.settings
    request_hash = idempotency.body_hash(body.model_dump(mode="json"))
    if idempotency_key is not None:
        earlier = await idempotency.lookup(runtime.db, idempotency_key, request_hash)
        if earlier is not None:
            return Created(earlier.response_status, earlier.response_body, earlier.instance_id)
    webhook_url = body.webhookUrl or settings.webhook_url
    check_webhook_url(runtime, body.webhookUrl)
    region = body.region or settings.default_region
    try:
        novita_name(body.name)  # readings `name_rule`: `_` is sent as `-`; anything else is a 400
    except UnacceptableName as bad_name:
        raise _field_error("name", str(bad_name)) from None
    offer = await _check_catalogue(runtime, body, region)

    now = utcnow()
    instance_id = new_instance_id()
    price = None if offer is None else offer.instance_price(body.gpuNum)
    row = Instance(
        id=instance_id,
        name=body.name,
        status=Status.CREATING.value,
        operation=Operation.CREATE.value,
        operation_started_at=now,
        operation_issued=False,
        create_state="pending",
        create_attempts=0,
        product_name=body.productName,
        product_id=offer.product_id if offer else None,
        template_id=str(body.templateId),
        gpu_num=body.gpuNum,
        rootfs_size=body.rootfsSize,
        region=region,
        cluster_id=offer.cluster_id if offer else None,
        billing_mode=body.billingMode,
        price_per_hour=price,
        webhook_url=webhook_url,
        port_mappings=[],
        connection_details={},
        request_id=current_request_id(),
        created_at=now,
        updated_at=now,
        next_attempt_at=now,
        attempts=0,
    )
    response: dict[str, Any] = {
        "instanceId": instance_id,
        "status": Status.CREATING.value,
        "message": "Instance creation accepted; it continues in the background.",
        "estimatedReadyTime": (now + TYPICAL_STARTUP).isoformat().replace("+00:00", "Z"),
        "region": region,
    }
    if offer is not None:
        response["productId"] = offer.product_id
        response["pricePerHour"] = price
    try:
        async with runtime.db.session() as session, session.begin():
            if idempotency_key is not None and not await idempotency.store(
                session, idempotency_key, request_hash, instance_id, 201, response
            ):
                raise _KeyTaken
            session.add(row)
            session.add(
                InstanceEvent(
                    instance_id=instance_id,
                    at=now,
                    from_status=None,
                    to_status=Status.CREATING.value,
                    reason="requested",
                )
            )
    except _KeyTaken:
        assert idempotency_key is not None
        earlier = await idempotency.lookup(runtime.db, idempotency_key, request_hash)
        assert earlier is not None  # the concurrent winner committed it
        return Created(earlier.response_status, earlier.response_body, earlier.instance_id)
    log.info("instance_requested", instance_id=instance_id, name=body.name)
    runtime.hint_provisioning()
    return Created(201, response, instance_id)


async def find_instance(runtime: Runtime, instance_id: str) -> Instance:
    """By our id or by the Novita id of a managed instance."""
    async with runtime.db.read_session() as session:
        row = (
            await session.execute(
                select(Instance)
                .where(or_(Instance.id == instance_id, Instance.novita_instance_id == instance_id))
                .limit(1)
            )
        ).scalar_one_or_none()
    if row is None:
        raise InstanceNotFound(f"Instance {instance_id!r} not found")
    return row


async def find_by_name(runtime: Runtime, name: str) -> Instance:
    """The one live instance with this name; several live ones make the name ambiguous."""
    async with runtime.db.read_session() as session:
        rows = (
            (
                await session.execute(
                    select(Instance)
                    .where(Instance.name == name, Instance.status != Status.DELETED.value)
                    .order_by(Instance.created_at.desc())
                    .limit(2)
                )
            )
            .scalars()
            .all()
        )
    if not rows:
        raise InstanceNotFound(f"No instance named {name!r}")
    if len(rows) > 1:
        raise InvalidState(
            f"Several instances are named {name!r}; use the instance id instead",
            details={"instanceIds": [row.id for row in rows]},
        )
    return rows[0]


async def get_instance(runtime: Runtime, instance_id: str) -> InstanceView:
    row = await find_instance(runtime, instance_id)
    return instance_view(row, stale=runtime.is_stale(row, utcnow()))


async def list_instances(
    runtime: Runtime,
    *,
    status: Status | None,
    name: str | None,
    limit: int,
    offset: int,
) -> dict[str, Any]:
    conditions = []
    if status is not None:
        conditions.append(Instance.status == status.value)
    else:
        conditions.append(Instance.status != Status.DELETED.value)
    if name:
        escaped = name.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        conditions.append(Instance.name.ilike(f"%{escaped}%", escape="\\"))
    async with runtime.db.read_session() as session:
        total = (
            await session.execute(select(func.count()).select_from(Instance).where(*conditions))
        ).scalar_one()
        rows = (
            (
                await session.execute(
                    select(Instance)
                    .where(*conditions)
                    .order_by(Instance.created_at.desc(), Instance.id.desc())
                    .limit(limit)
                    .offset(offset)
                )
            )
            .scalars()
            .all()
        )
    now = utcnow()
    return {
        "instances": [instance_view(row, stale=runtime.is_stale(row, now)) for row in rows],
        "total": total,
        "limit": limit,
        "offset": offset,
    }


async def request_operation(
    runtime: Runtime, row: Instance, operation: Operation, webhook_url: str | None
) -> dict[str, Any]:
    """Append a start, stop or delete to the instance's request log, or refuse it with 409.

    One transaction: bumping `request_seq` locks the instance row (PostgreSQL) or the database
    (SQLite), so the decision sees every request accepted before it and none can slip between
    the check and the insert. Nothing the pipeline writes can overwrite the new row: it only
    resolves requests it has read, by seq (domain/requests.py has the rules).
    """
    check_webhook_url(runtime, webhook_url)
    now = utcnow()
    async with runtime.db.session() as session, session.begin():
        bumped = (
            await session.execute(
                update(Instance)
                .where(Instance.id == row.id)
                .values(request_seq=Instance.request_seq + 1, next_attempt_at=now, updated_at=now)
                .returning(
                    Instance.request_seq,
                    Instance.status,
                    Instance.operation,
                    Instance.novita_instance_id,
                )
                .execution_options(synchronize_session=False)
            )
        ).one_or_none()
        if bumped is None:  # purged meanwhile
            raise InstanceNotFound(f"Instance {row.id!r} not found")
        seq, status, under_way, novita_id = bumped
        open_requests = (
            await session.execute(
                select(OperationRequest.seq, OperationRequest.operation, OperationRequest.state)
                .where(
                    OperationRequest.instance_id == row.id,
                    OperationRequest.state.in_(
                        (RequestState.PENDING.value, RequestState.IN_PROGRESS.value)
                    ),
                )
                .order_by(OperationRequest.seq)
            )
        ).all()
        pending = [Operation(op) for _, op, state in open_requests if state == RequestState.PENDING]
        refusal = acceptance_refusal(
            operation,
            status=Status(status),
            under_way=Operation(under_way) if under_way else None,
            pending=pending,
            has_upstream=novita_id is not None,
        )
        # Asked again: it joins the last open request when that is the same operation.
        last = open_requests[-1] if open_requests else None
        joins = last[0] if last is not None and last[1] == operation.value else None
        if refusal is not None:
            raise InvalidState(refusal, details={"status": status})  # rolls the bump back
        session.add(
            OperationRequest(
                instance_id=row.id,
                seq=seq,
                operation=operation.value,
                state=RequestState.PENDING.value,
                joins_seq=joins,
                webhook_url=webhook_url,
                request_id=current_request_id(),
                requested_at=now,
            )
        )
    runtime.hint_provisioning()
    log.info("operation_requested", instance_id=row.id, operation=operation.value, seq=seq)
    return {
        "instanceId": row.id,
        "status": OPERATION_STATUS[operation].value,
        "message": f"{operation.value.capitalize()} accepted as request #{seq}; it runs in the "
        "background after the requests accepted before it.",
        "requestSeq": seq,
    }


async def list_operations(runtime: Runtime, instance_id: str) -> dict[str, Any]:
    """The instance's request log, oldest first: every start/stop/delete and its outcome."""
    row = await find_instance(runtime, instance_id)
    async with runtime.db.read_session() as session:
        requests = (
            (
                await session.execute(
                    select(OperationRequest)
                    .where(OperationRequest.instance_id == row.id)
                    .order_by(OperationRequest.seq)
                )
            )
            .scalars()
            .all()
        )
    return {"instanceId": row.id, "operations": [operation_view(r) for r in requests]}
