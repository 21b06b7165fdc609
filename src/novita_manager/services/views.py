"""Public representations built from rows: an instance (GET /api/instances/{id}) and an
operation request (GET /api/instances/{id}/operations)."""

from __future__ import annotations

from typing import Any

from novita_manager.domain.payloads import iso
from novita_manager.store.models import Instance, OperationRequest


def instance_view(row: Instance, *, stale: bool) -> dict[str, Any]:
    observation = row.observation or {}
    return {
        "id": row.id,
        "name": row.name,
        "status": row.status,
        "novitaStatus": row.novita_status,
        "novitaInstanceId": row.novita_instance_id,
        "productId": row.product_id,
        "productName": row.product_name,
        "templateId": row.template_id,
        "gpuNum": row.gpu_num,
        "rootfsSize": row.rootfs_size,
        "region": row.region,
        "clusterId": row.cluster_id or observation.get("clusterId"),
        "billingMode": row.billing_mode,
        "pricePerHour": row.price_per_hour,
        "portMappings": list(row.port_mappings or []),
        "connectionDetails": dict(row.connection_details or {}),
        "createdAt": iso(row.created_at),
        "startedAt": iso(row.started_at),
        "readyAt": iso(row.ready_at),
        "failedAt": iso(row.failed_at),
        "stoppedAt": iso(row.stopped_at),
        "deletedAt": iso(row.deleted_at),
        "lastError": row.failure_reason or row.last_error,
        "lastSyncedAt": iso(row.last_synced_at),
        "stale": stale,
    }


def operation_view(request: OperationRequest) -> dict[str, Any]:
    return {
        "seq": request.seq,
        "operation": request.operation,
        "state": request.state,
        "reason": request.reason,
        "joins": request.joins_seq,
        "requestedAt": iso(request.requested_at),
        "resolvedAt": iso(request.resolved_at),
        "requestId": request.request_id,
    }
