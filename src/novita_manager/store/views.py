"""Rows rendered as the public views (`domain/views.py`): an instance, an operation request and
a webhook delivery.

The one place a row's columns become the API's fields, used by the read endpoints and by the
webhook payloads written in the same transaction as a status change.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from novita_manager.domain.payloads import iso
from novita_manager.domain.requests import RequestState
from novita_manager.domain.statuses import DeliveryStatus
from novita_manager.domain.views import (
    AttemptView,
    DeliveryView,
    InstanceView,
    OperationRequestView,
)
from novita_manager.store.costs_view import costs_and_expiry
from novita_manager.store.models import (
    Instance,
    OperationRequest,
    WebhookAttempt,
    WebhookDelivery,
)

# The columns cost to date and the next limit are computed from (store/costs_view.py).
LIMIT_COLUMNS: tuple[str, ...] = (
    "billing_since",
    "billing_rate",
    "billed_seconds",
    "billed_cost",
    "operation",
    "auto_stop_after",
    "auto_delete_after",
    "idle_stop_after",
    "max_cost",
    "idle_since",
    "limit_fired",
)

# The columns an instance view is made of: the fast read path selects exactly these.
VIEW_COLUMNS: tuple[str, ...] = (
    "id",
    "name",
    "status",
    "novita_status",
    "novita_instance_id",
    "product_id",
    "product_name",
    "template_id",
    "gpu_num",
    "rootfs_size",
    "region",
    "cluster_id",  # or, until it is recorded, the cluster the last observation named
    "billing_mode",
    "price_per_hour",
    "port_mappings",
    "connection_details",
    "created_at",
    "started_at",
    "ready_at",
    "failed_at",
    "stopped_at",
    "deleted_at",
    "failure_reason",
    "last_error",
    "last_synced_at",
    # Spot life (domain/recovery.py).
    "cluster_name",
    "spot_status",
    "reclaim_at",
    "recoveries",
    # Costs and limits: `costs_and_expiry` reads them.
    *LIMIT_COLUMNS,
)


def render_instance(
    columns: Mapping[str, Any],
    *,
    stale: bool,
    timestamp: Callable[[datetime | str | None], Any] | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The instance view as plain JSON values, from the row's columns (`VIEW_COLUMNS`).
    `now`: the moment cost to date runs to (a page passes one for all its rows).

    This is the one place the fields are made; `instance_view` validates the same dict into the
    typed model, and the read endpoints serialise it directly (a test checks both agree).
    Timestamps are datetimes, or already their ISO-8601 text (the SQLite read path has it);
    `timestamp` formats each (default: ISO-8601 text). The JSON endpoints pass `keep_timestamp`
    and let orjson write datetimes with `OPT_UTC_Z`, the same text in C.
    """
    time = timestamp or _iso
    connection = columns["connection_details"] or {}
    return {
        "id": columns["id"],
        "name": columns["name"],
        "status": columns["status"],
        "novitaStatus": columns["novita_status"],
        "novitaInstanceId": columns["novita_instance_id"],
        "productId": columns["product_id"],
        "productName": columns["product_name"],
        "templateId": columns["template_id"],
        "gpuNum": columns["gpu_num"],
        "rootfsSize": columns["rootfs_size"],
        "region": columns["region"],
        "clusterId": columns["cluster_id"],
        "billingMode": columns["billing_mode"],
        "pricePerHour": columns["price_per_hour"],
        "portMappings": [
            {"port": int(m["port"]), "endpoint": m.get("endpoint"), "type": m.get("type")}
            for m in columns["port_mappings"] or []
        ],
        "connectionDetails": {
            "ssh": connection.get("ssh"),
            "jupyter": connection.get("jupyter"),
            "webTerminal": connection.get("webTerminal"),
        },
        "createdAt": time(columns["created_at"]),
        "startedAt": time(columns["started_at"]),
        "readyAt": time(columns["ready_at"]),
        "failedAt": time(columns["failed_at"]),
        "stoppedAt": time(columns["stopped_at"]),
        "deletedAt": time(columns["deleted_at"]),
        "lastError": columns["failure_reason"] or columns["last_error"],
        "lastSyncedAt": time(columns["last_synced_at"]),
        "stale": stale,
        "cluster": columns["cluster_name"],
        "spotStatus": columns["spot_status"],
        "reclaimAt": time(columns["reclaim_at"]),
        "recoveries": columns["recoveries"] or 0,
        **costs_and_expiry(columns, time, now),
    }


def _iso(moment: datetime | str | None) -> str | None:
    return moment if isinstance(moment, str) else iso(moment)


def keep_timestamp(moment: datetime | str | None) -> datetime | str | None:
    """For `render_instance` when orjson writes the JSON (with `orjson.OPT_UTC_Z`)."""
    return moment


def view_columns(row: Instance, changed: dict[str, Any] | None = None) -> dict[str, Any]:
    """The `VIEW_COLUMNS` of an ORM row (`store.instance_reads` selects the same in SQL), with
    the columns in `changed` (a step's change, before it is written) in place of the row's."""
    columns = {name: getattr(row, name) for name in VIEW_COLUMNS}
    observation = row.observation
    if changed:
        columns.update((name, changed[name]) for name in VIEW_COLUMNS if name in changed)
        observation = changed.get("observation", observation)
    columns["cluster_id"] = columns["cluster_id"] or (observation or {}).get("clusterId")
    return columns


def instance_json(
    row: Instance,
    *,
    stale: bool,
    changed: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The view of `row` as JSON values, or of `row` as `changed` (column values) will leave
    it; cost to date runs to `now` (default: the current time). What a webhook carries: the
    typed model's validation and dump gave the same dict back at a cost a burst of
    transitions noticed."""
    return render_instance(view_columns(row, changed), stale=stale, now=now)


def instance_view(
    row: Instance,
    *,
    stale: bool,
    changed: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> InstanceView:
    """`instance_json` as the typed model."""
    return InstanceView.model_validate(instance_json(row, stale=stale, changed=changed, now=now))


def operation_view(request: OperationRequest) -> OperationRequestView:
    requested_at = iso(request.requested_at)
    assert requested_at is not None  # the column is NOT NULL
    return OperationRequestView(
        seq=request.seq,
        operation=request.operation,  # type: ignore[arg-type]  # validated by the model
        state=RequestState(request.state),
        reason=request.reason,
        joins=request.joins_seq,
        requestedAt=requested_at,
        resolvedAt=iso(request.resolved_at),
        requestId=request.request_id,
        cause=request.cause or "user",
    )


def delivery_view(row: WebhookDelivery, attempts: list[WebhookAttempt]) -> DeliveryView:
    return DeliveryView(
        id=row.id,
        instanceId=row.instance_id,
        eventType=row.event_type,
        url=row.url,
        status=DeliveryStatus(row.status),
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
