"""What the service says about an instance: one typed view for the API, the SDK and webhooks.

The REST answers (CONTRACT.md "Instances"), the `instance` object of every webhook payload and
the SDK's return values are these models, so a field added here appears everywhere at once.
Field names are camelCase and compatible with the TypeScript service users migrate from.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from novita_manager.domain.requests import RequestState
from novita_manager.domain.statuses import DeliveryStatus, Status


class CreateInstanceResponse(BaseModel):
    instanceId: str
    status: Literal["creating"]
    message: str
    estimatedReadyTime: str = Field(description="ISO-8601 estimate of when it will be running.")
    region: str
    productId: str | None = None
    pricePerHour: float | None = Field(
        default=None, description="USD per hour for all GPUs of the instance."
    )


class PortMappingView(BaseModel):
    port: int
    endpoint: str | None = None
    type: str | None = None


class ConnectionDetails(BaseModel):
    ssh: str | None = None
    jupyter: str | None = None
    webTerminal: str | None = None


class InstanceView(BaseModel):
    id: str
    name: str
    status: Status
    novitaStatus: str | None
    novitaInstanceId: str | None
    productId: str | None
    productName: str
    templateId: str
    gpuNum: int
    rootfsSize: int
    region: str
    clusterId: str | None
    billingMode: str = Field(
        description="What is paid: `spot` or `onDemand` (onDemand when `fallbackToOnDemand` "
        "placed a spot request on an on-demand offer)."
    )
    pricePerHour: float | None
    portMappings: list[PortMappingView]
    connectionDetails: ConnectionDetails
    createdAt: str
    startedAt: str | None = None
    readyAt: str | None = None
    failedAt: str | None = None
    stoppedAt: str | None = None
    deletedAt: str | None = None
    lastError: str | None = None
    lastSyncedAt: str | None = None
    stale: bool = Field(description="True when Novita could not be reached recently.")
    # Spot life (docs/api.md "Spot instances").
    cluster: str | None = Field(
        default=None,
        description="Region code of the cluster the instance was placed in (`CN-HK-01`); see "
        "`clusterId` for Novita's id. With `regions` it may differ from `region`.",
    )
    spotStatus: str | None = Field(
        default=None,
        description="Novita's spot status: `running`, `notified` (a reclaim is announced for "
        "`reclaimAt`), `reclaiming`, `terminated` (taken); null for on-demand instances.",
    )
    reclaimAt: str | None = Field(
        default=None,
        description="When Novita said it will reclaim this spot instance (ISO-8601); null when "
        "no reclaim is announced.",
    )
    recoveries: int = Field(
        default=0, description="Recoveries after spot reclaims so far (see `onReclaim`)."
    )
    # Cost and time (domain/costs.py, domain/limits.py; docs/api.md "Costs and limits").
    costToDate: float = Field(
        default=0.0,
        description="USD billed so far (estimated from Novita's statuses): every period from "
        "`pulling` until stopped or removed, at the price recorded when it began, plus the "
        "container disk beyond 60 GB; nothing while stopped.",
    )
    billedSeconds: float = Field(default=0.0, description="Seconds billed so far.")
    expiresAt: str | None = Field(
        default=None,
        description="When the next limit (autoStopAfter, autoDeleteAfter, maxCost at the "
        "current rate, idleStopAfter once idle) will stop or delete the instance; null: none.",
    )


class InstanceList(BaseModel):
    instances: list[InstanceView]
    total: int
    limit: int
    offset: int


class OperationResponse(BaseModel):
    instanceId: str
    status: Status = Field(description="The status the instance is moving to.")
    message: str
    requestSeq: int = Field(
        description="The accepted request's number on this instance (1, 2, ...); its outcome "
        "is listed by GET /api/instances/{instanceId}/operations."
    )


class OperationRequestView(BaseModel):
    seq: int = Field(description="Order of acceptance on this instance, from 1.")
    operation: Literal["start", "stop", "delete"]
    state: RequestState = Field(
        description="`pending` until the pipeline takes it up; `superseded` (by a later "
        "delete, or a stop during a start) and `refused` (no longer applied when its turn "
        "came) say why in `reason`."
    )
    reason: str | None = None
    joins: int | None = Field(
        default=None,
        description="The seq of the request this one joined (the same operation asked again); "
        "it shares that request's outcome.",
    )
    requestedAt: str
    resolvedAt: str | None = None
    requestId: str | None = Field(default=None, description="X-Request-ID of the request.")
    cause: str = Field(
        default="user",
        description="Who asked: `user`, or the limit that fired (`auto-stop`, `auto-delete`, "
        "`max-cost`, `idle`).",
    )


class OperationRequestList(BaseModel):
    instanceId: str
    operations: list[OperationRequestView]


class AttemptView(BaseModel):
    attemptedAt: str = Field(description="When the attempt started (ISO-8601, UTC).")
    statusCode: int | None = Field(description="The receiver's HTTP status; null without one.")
    error: str | None = Field(
        description="Why the attempt failed (status, timeout, connection error, SSRF refusal)."
    )
    durationMs: float = Field(description="Duration of the attempt in milliseconds.")


class DeliveryView(BaseModel):
    id: str = Field(description="Delivery id, sent as `webhook-id`; the same on every retry.")
    instanceId: str
    eventType: str = Field(description="`instance.running`, `instance.failed`, ...")
    url: str | None = Field(description="Target URL; null when no webhook was configured.")
    status: DeliveryStatus = Field(
        description="`pending` (to be sent or retried), `delivered`, `failed` (not retryable or "
        "retries exhausted) or `skipped` (no URL)."
    )
    attempts: int = Field(description="HTTP attempts made since the delivery was (re)queued.")
    createdAt: str
    deliveredAt: str | None = None
    nextAttemptAt: str | None = Field(
        default=None, description="When the next attempt is due, while pending."
    )
    lastError: str | None = None
    attemptsLog: list[AttemptView] = Field(
        description="Every attempt ever made, oldest first (including before redeliveries)."
    )


class DeliveryList(BaseModel):
    deliveries: list[DeliveryView] = Field(description="Newest first.")
