"""Rows rendered as the public views (`domain/views.py`): an instance, an operation request and
a webhook delivery.

The one place a row's columns become the API's fields, used by the read endpoints and by the
webhook payloads written in the same transaction as a status change.
"""

from __future__ import annotations

from novita_manager.domain.payloads import iso
from novita_manager.domain.views import (
    AttemptView,
    ConnectionDetails,
    DeliveryView,
    InstanceView,
    OperationRequestView,
    PortMappingView,
)
from novita_manager.store.models import (
    Instance,
    OperationRequest,
    WebhookAttempt,
    WebhookDelivery,
)


def instance_view(row: Instance, *, stale: bool) -> InstanceView:
    observation = row.observation or {}
    created_at = iso(row.created_at)
    assert created_at is not None  # the column is NOT NULL
    return InstanceView(
        id=row.id,
        name=row.name,
        status=row.status,
        novitaStatus=row.novita_status,
        novitaInstanceId=row.novita_instance_id,
        productId=row.product_id,
        productName=row.product_name,
        templateId=row.template_id,
        gpuNum=row.gpu_num,
        rootfsSize=row.rootfs_size,
        region=row.region,
        clusterId=row.cluster_id or observation.get("clusterId"),
        billingMode=row.billing_mode,
        pricePerHour=row.price_per_hour,
        portMappings=[PortMappingView.model_validate(p) for p in row.port_mappings or []],
        connectionDetails=ConnectionDetails.model_validate(row.connection_details or {}),
        createdAt=created_at,
        startedAt=iso(row.started_at),
        readyAt=iso(row.ready_at),
        failedAt=iso(row.failed_at),
        stoppedAt=iso(row.stopped_at),
        deletedAt=iso(row.deleted_at),
        lastError=row.failure_reason or row.last_error,
        lastSyncedAt=iso(row.last_synced_at),
        stale=stale,
    )


def operation_view(request: OperationRequest) -> OperationRequestView:
    requested_at = iso(request.requested_at)
    assert requested_at is not None  # the column is NOT NULL
    return OperationRequestView(
        seq=request.seq,
        operation=request.operation,  # type: ignore[arg-type]  # validated by the model
        state=request.state,  # type: ignore[arg-type]
        reason=request.reason,
        joins=request.joins_seq,
        requestedAt=requested_at,
        resolvedAt=iso(request.resolved_at),
        requestId=request.request_id,
    )


def delivery_view(row: WebhookDelivery, attempts: list[WebhookAttempt]) -> DeliveryView:
    return DeliveryView(
        id=row.id,
        instanceId=row.instance_id,
        eventType=row.event_type,
        url=row.url,
        status=row.status,  # type: ignore[arg-type]
        attempts=row.attempts,
        createdAt=iso(row.created_at) or "",
        deliveredAt=iso(row.delivered_at),
        nextAttemptAt=iso(row.next_attempt_at),
        lastError=row.last_error,
        attemptsLog=[
            AttemptView(
                attemptedAt=iso(a.attempted_at) or "",
                statusCode=a.status_code,
                error=a.error,
                durationMs=a.duration_ms,
            )
            for a in attempts
        ],
    )
