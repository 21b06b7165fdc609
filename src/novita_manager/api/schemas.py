"""Request and response bodies of the instances API (CONTRACT.md "Instances").

Field names are camelCase and compatible with the TypeScript service users migrate from.
Request fields are strict: an integer must be a JSON integer (`2`, not `"2"`, `2.0` or `true`) and
a string a JSON string; anything else is a 400 VALIDATION_ERROR naming the field.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from novita_manager.domain.statuses import Status

NAME_PATTERN = r"^[A-Za-z0-9_-]+$"


class _Strict(BaseModel):
    """Unknown fields are refused, and no value is coerced: `"2"`, `2.0` and `true` are not 2."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, strict=True)


def _check_http_url(value: str | None) -> str | None:
    if value is None:
        return None
    if not value.startswith(("http://", "https://")) or len(value) > 2000:
        raise ValueError("must be an http:// or https:// URL of at most 2000 characters")
    return value


class CreateInstanceBody(_Strict):
    name: str = Field(
        min_length=1,
        max_length=100,
        pattern=NAME_PATTERN,
        description="Instance name: letters, digits, `-` and `_`.",
        examples=["train-llama-1"],
    )
    productName: str = Field(
        min_length=1,
        max_length=200,
        description="GPU product name, e.g. `RTX 4090 24GB`.",
        examples=["RTX 4090 24GB"],
    )
    templateId: str | int = Field(
        description="Novita template id: a string, or an integer (kept as a string); a boolean, "
        "a number with a fraction (`2.0`), null or anything else is refused.",
        examples=["1"],
    )
    gpuNum: int = Field(
        default=1,
        ge=1,
        le=8,
        description='GPUs per instance: a JSON integer (`2`, not `"2"`, `2.0` or `true`).',
    )
    rootfsSize: int = Field(
        default=60,
        ge=1,
        le=6144,
        description="Root disk in GB, a JSON integer; must fit the chosen product's "
        "minRootFS..maxRootFS.",
    )
    region: str | None = Field(
        default=None,
        min_length=1,
        max_length=100,
        description="Region code (`CN-HK-01`), Novita cluster id or name; "
        "defaults to DEFAULT_REGION.",
    )
    billingMode: Literal["spot", "onDemand"] = Field(default="spot")
    webhookUrl: str | None = Field(
        default=None, description="http(s) URL notified of this instance's events."
    )

    @field_validator("templateId", mode="before")
    @classmethod
    def _template_id_type(cls, value: Any) -> Any:
        # Before validation, so that a boolean (an int to Python) or `2.0` never reaches the
        # union, and the error is one line naming templateId (not one per union member).
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise ValueError("must be a string or an integer")
        return value

    @field_validator("templateId")
    @classmethod
    def _template_id(cls, value: str | int) -> str:
        text = str(value).strip()
        if not text or len(text) > 255:
            raise ValueError("must be a non-empty id of at most 255 characters")
        return text

    @field_validator("webhookUrl")
    @classmethod
    def _webhook(cls, value: str | None) -> str | None:
        return _check_http_url(value)


class OperationBody(_Strict):
    webhookUrl: str | None = Field(
        default=None, description="Overrides the instance's webhook URL from now on."
    )

    @field_validator("webhookUrl")
    @classmethod
    def _webhook(cls, value: str | None) -> str | None:
        return _check_http_url(value)


class OperationByNameBody(OperationBody):
    instanceName: str = Field(min_length=1, max_length=100, pattern=NAME_PATTERN)


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
