"""Creating an instance: check what can be checked now, then store the request.

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

from novita_manager.domain.offers import NoOffer, Offer
from novita_manager.domain.regions import ANY_REGION, resolve_cluster
from novita_manager.domain.statuses import CreateState, Operation, Status
from novita_manager.engine.provisioning.offers import Placement
from novita_manager.engine.provisioning.offers import plan as plan_offers
from novita_manager.errors import ValidationFailed
from novita_manager.logging import current_request_id, get_logger
from novita_manager.novita.create_request import UnacceptableName, novita_name
from novita_manager.novita.errors import NovitaError, is_transient
from novita_manager.services import idempotency
from novita_manager.services.create_writer import NewInstance
from novita_manager.services.inputs import CreateInstanceBody
from novita_manager.services.limits import limit_columns
from novita_manager.services.spot_fields import spot_fields
from novita_manager.store.types import utcnow
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


async def _check_catalogue(
    runtime: Runtime, body: CreateInstanceBody, placement: Placement
) -> Offer | None:
    """Resolve the offer and the template now; None when the catalogue cannot be reached.

    Errors the user can fix (unknown region, product or template, no offer, none under the
    price cap) are raised as 400.
    """
    catalogue = runtime.catalogue
    try:
        async with asyncio.timeout(CATALOGUE_CHECK_TIMEOUT):
            clusters = await catalogue.clusters()
            for region in (placement.region, *(placement.regions or [])):
                if region.lower() != ANY_REGION and resolve_cluster(region, clusters) is None:
                    known = ", ".join(sorted(c.name or c.id for c in clusters))
                    named = "region" if region == placement.region else "regions"
                    raise _field_error(named, f"Unknown region {region!r} (known regions: {known})")
            try:
                [offer, *_] = await plan_offers(catalogue, placement)
            except NoOffer as no_offer:
                field = {
                    "unknown_product": "productName",
                    "rootfs_out_of_range": "rootfsSize",
                    "over_price_cap": "maxPricePerHour",
                }
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
    """Check the request, store it and wake the provisioning pipeline.

    A request whose Idempotency-Key was stored before gets the first answer given for it. The
    key is looked up only when the request cannot go ahead as a new one: a check refused it, or
    its key was found taken when its rows were written. Most keys are new, and a lookup before
    every keyed create was a quarter of the create's CPU in the API process."""
    request_hash = "" if idempotency_key is None else idempotency.body_hash(body.idempotency_form())
    try:
        unit, response = await _accept(runtime, body, idempotency_key, request_hash)
    except (ValidationFailed, NovitaError):
        earlier = await _earlier(runtime, idempotency_key, request_hash)
        if earlier is None:
            raise
        return earlier
    if not await runtime.create_writer.write(unit):
        earlier = await _earlier(runtime, idempotency_key, request_hash)
        assert earlier is not None  # only a key can be taken, by a request that committed it
        return earlier
    instance_id = str(unit.row["id"])
    log.info("instance_requested", instance_id=instance_id, name=body.name)
    runtime.hint_provisioning()
    runtime.events.poke()  # its first history entry, to the open streams at once
    return Created(201, response, instance_id)


async def _earlier(runtime: Runtime, key: str | None, request_hash: str) -> Created | None:
    """The first answer given for `key` (422 when it came with another body), if stored."""
    if key is None:
        return None
    earlier = await idempotency.lookup(runtime.db, key, request_hash)
    if earlier is None:
        return None
    return Created(earlier.response_status, earlier.response_body, earlier.instance_id)


async def _accept(
    runtime: Runtime, body: CreateInstanceBody, idempotency_key: str | None, request_hash: str
) -> tuple[NewInstance, dict[str, Any]]:
    """The rows that store the request, and its 201 body; raises what refuses it."""
    settings = runtime.settings
    webhook_url = body.webhookUrl or settings.webhook_url
    check_webhook_url(runtime, body.webhookUrl)
    spot = spot_fields(body, settings)
    try:
        novita_name(body.name)  # readings `name_rule`: `_` is sent as `-`; anything else is a 400
    except UnacceptableName as bad_name:
        raise _field_error("name", str(bad_name)) from None
    placement = Placement(
        product_name=body.productName,
        region=spot.region,
        regions=spot.regions,
        billing_mode=body.billingMode,
        rootfs_size=body.rootfsSize,
        gpu_num=body.gpuNum,
        max_price_per_hour=spot.max_price_per_hour,
        fallback_to_on_demand=spot.fallback_to_on_demand,
    )
    region = spot.region
    offer = await _check_catalogue(runtime, body, placement)

    now = utcnow()
    instance_id = new_instance_id()
    price = None if offer is None else offer.instance_price(body.gpuNum)
    row: dict[str, Any] = dict(
        id=instance_id,
        name=body.name,
        status=Status.CREATING.value,
        operation=Operation.CREATE.value,
        operation_started_at=now,
        operation_issued=False,
        create_state=CreateState.PENDING.value,
        create_attempts=0,
        product_name=body.productName,
        product_id=offer.product_id if offer else None,
        template_id=str(body.templateId),
        gpu_num=body.gpuNum,
        rootfs_size=body.rootfsSize,
        region=region,
        cluster_id=offer.cluster_id if offer else None,
        cluster_name=offer.cluster_name if offer else None,
        billing_mode=offer.billing_mode if offer else body.billingMode,
        requested_billing_mode=body.billingMode,
        regions=spot.regions,
        max_price_per_hour=spot.max_price_per_hour,
        fallback_to_on_demand=spot.fallback_to_on_demand,
        on_reclaim=spot.on_reclaim,
        max_recoveries=spot.max_recoveries,
        recoveries=0,
        price_per_hour=price,
        webhook_url=webhook_url,
        port_mappings=[],
        connection_details={},
        request_id=current_request_id(),
        created_at=now,
        updated_at=now,
        next_attempt_at=now,
        attempts=0,
        **limit_columns(body, settings),
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
    key_row = None
    if idempotency_key is not None:
        key_row = idempotency.key_row(idempotency_key, request_hash, instance_id, 201, response)
    history = {
        "instance_id": instance_id,
        "at": now,
        "from_status": None,
        "to_status": Status.CREATING.value,
        "reason": "requested",
    }
    return NewInstance(row, history, key_row), response
