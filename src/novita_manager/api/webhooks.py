"""The webhook deliveries API (CONTRACT.md "Webhooks"): thin handlers over `services.webhooks`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Depends, Path

from novita_manager.api.deps import get_runtime
from novita_manager.api.openapi import error_responses
from novita_manager.domain.views import DeliveryList, DeliveryView
from novita_manager.services.inputs import RedeliverBody
from novita_manager.services.runtime import Runtime
from novita_manager.services.webhooks import list_deliveries, redeliver

router = APIRouter(tags=["webhooks"])

RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


@router.get(
    "/api/instances/{instanceId}/webhooks",
    response_model=DeliveryList,
    responses=error_responses(
        400,
        404,
        e400="Invalid `instanceId` (`VALIDATION_ERROR`: over 100 characters)",
        e404="No such instance (`INSTANCE_NOT_FOUND`)",
    ),
    summary="Webhook deliveries of an instance, with every attempt",
    description="Each state change that notifies (`instance.running`, `instance.failed`, "
    "`instance.stopped`, `instance.deleted`) is one delivery; failed ones stay visible and can "
    "be redelivered. `instanceId` may be our id or the Novita instance id.",
)
async def get_instance_webhooks(
    runtime: RuntimeDep,
    instance_id: Annotated[str, Path(alias="instanceId", max_length=100)],
) -> DeliveryList:
    return await list_deliveries(runtime.db, instance_id)


@router.post(
    "/api/webhooks/{deliveryId}/redeliver",
    status_code=202,
    response_model=DeliveryView,
    responses=error_responses(
        400,
        404,
        e400="The new URL is refused (`VALIDATION_ERROR`, names `url`)",
        e404="No such delivery (`NOT_FOUND`)",
    ),
    summary="Deliver a webhook again",
    description="Queues the delivery now with its attempts reset and the same `webhook-id`, so "
    "receivers can deduplicate. An optional `url` changes the target (checked by the SSRF "
    "guard). The attempt log keeps earlier attempts.",
)
async def redeliver_webhook(
    runtime: RuntimeDep,
    delivery_id: Annotated[str, Path(alias="deliveryId", max_length=100)],
    body: Annotated[RedeliverBody | None, Body()] = None,
) -> DeliveryView:
    view = await redeliver(
        runtime.db, runtime.settings, delivery_id, body.url if body is not None else None
    )
    runtime.webhook_pipeline.hint()
    return view
