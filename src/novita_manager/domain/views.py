"""What the service says about an instance: one typed view for the API, the SDK and webhooks.

The REST answers (CONTRACT.md "Instances"), the `instance` object of every webhook payload and
the SDK's return values are these models, so a field added here appears everywhere at once.
Field names are camelCase and compatible with the TypeScript service users migrate from.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from novita_manager.domain.statuses import Status


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
    billingMode: str
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
    state: Literal["pending", "in_progress", "succeeded", "failed", "superseded", "refused"] = (
        Field(
            description="`pending` until the pipeline takes it up; `superseded` (by a later "
            "delete, or a stop during a start) and `refused` (no longer applied when its turn "
            "came) say why in `reason`."
        )
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


class OperationRequestList(BaseModel):
    instanceId: str
    operations: list[OperationRequestView]
