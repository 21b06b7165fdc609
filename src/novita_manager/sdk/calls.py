"""What the SDK sends: each endpoint of the API described once as an `ApiCall`, the request
body of a create, and the errors every answer can become. The clients in `sdk/__init__.py`
execute these descriptions."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar
from urllib.parse import quote

import httpx
from pydantic import ValidationError

from novita_manager.domain.events import EventList
from novita_manager.domain.views import (
    CreateInstanceResponse,
    DeliveryList,
    InstanceList,
    InstanceView,
    OperationRequestList,
    OperationResponse,
)

T = TypeVar("T")


@dataclass(frozen=True)
class CreateInstance:
    """The body of `POST /api/instances`; fields left as None take the service's defaults."""

    name: str
    product_name: str
    template_id: str
    gpu_num: int | None = None
    rootfs_size: int | None = None
    region: str | None = None
    billing_mode: str | None = None
    webhook_url: str | None = None
    # Spot life (docs/api.md "Spot instances"): regions is a list, or "any".
    regions: list[str] | str | None = None
    max_price_per_hour: float | None = None
    fallback_to_on_demand: bool | None = None
    on_reclaim: str | None = None
    max_recoveries: int | None = None
    # Limits (docs/api.md "Costs and limits"): durations are seconds or "90s", "30m", "8h", "2d".
    auto_stop_after: int | str | None = None
    auto_delete_after: int | str | None = None
    idle_stop_after: int | str | None = None
    max_cost: float | None = None

    def to_body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "name": self.name,
            "productName": self.product_name,
            "templateId": self.template_id,
        }
        optional = {
            "gpuNum": self.gpu_num,
            "rootfsSize": self.rootfs_size,
            "region": self.region,
            "billingMode": self.billing_mode,
            "webhookUrl": self.webhook_url,
            "regions": self.regions,
            "maxPricePerHour": self.max_price_per_hour,
            "fallbackToOnDemand": self.fallback_to_on_demand,
            "onReclaim": self.on_reclaim,
            "maxRecoveries": self.max_recoveries,
            "autoStopAfter": self.auto_stop_after,
            "autoDeleteAfter": self.auto_delete_after,
            "idleStopAfter": self.idle_stop_after,
            "maxCost": self.max_cost,
        }
        body.update({key: value for key, value in optional.items() if value is not None})
        return body


class ServiceError(Exception):
    """Base of what the client raises."""


class ServiceUnreachable(ServiceError):
    """No HTTP answer at all: connection refused, DNS failure, timeout."""

    def __init__(self, base_url: str, reason: str) -> None:
        super().__init__(f"cannot reach {base_url}: {reason}")
        self.base_url = base_url
        self.reason = reason


class ApiResponseError(ServiceError):
    """An error answer; `body` is the envelope as sent (or None when it was not JSON).

    Also raised for a success whose body is not JSON or not the documented model."""

    def __init__(self, status_code: int, body: dict[str, Any] | None, text: str) -> None:
        error = (body or {}).get("error") if isinstance(body, dict) else None
        error = error if isinstance(error, dict) else {}
        self.status_code = status_code
        self.body = body
        self.code: str = str(error.get("code") or f"HTTP_{status_code}")
        self.message: str = str(error.get("message") or text.strip()[:500] or "no message")
        self.details: Any = error.get("details")
        self.request_id: str | None = error.get("requestId")
        super().__init__(f"{status_code} {self.code}: {self.message}")


@dataclass(frozen=True)
class ApiCall(Generic[T]):
    """One request to the API and how to read its successful answer (`parse` of the JSON)."""

    method: str
    path: str
    parse: Callable[[Any], T]
    params: dict[str, Any] | None = None
    json: dict[str, Any] | None = None
    headers: dict[str, str] | None = None

    def read(self, response: httpx.Response) -> T:
        """The parsed answer; `ApiResponseError` for an error, a non-JSON or unexpected body."""
        try:
            body = response.json()
        except ValueError:
            body = None
        if not response.is_success:
            raise ApiResponseError(response.status_code, body, response.text)
        if body is None:
            raise ApiResponseError(response.status_code, None, "the answer is not JSON")
        try:
            return self.parse(body)
        except ValidationError as error:
            raise ApiResponseError(
                response.status_code,
                None,
                f"unexpected answer to {self.method} {self.path}: {error}",
            ) from None


def _path(instance_id: str) -> str:
    return f"/api/instances/{quote(instance_id, safe='')}"


def _operation(method: str, path: str, webhook_url: str | None) -> ApiCall[OperationResponse]:
    body = {"webhookUrl": webhook_url} if webhook_url else None
    return ApiCall(method, path, OperationResponse.model_validate, json=body)


# The endpoints (CONTRACT.md "Instances"), one function each; the clients below execute them.
# The function's name without "_" is the clients' method name, its docstring the method's.


def _create_instance(
    request: CreateInstance, idempotency_key: str | None = None
) -> ApiCall[CreateInstanceResponse]:
    """Create an instance (`POST /api/instances`); retrying with the same key creates nothing."""
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
    return ApiCall(
        "POST",
        "/api/instances",
        CreateInstanceResponse.model_validate,
        json=request.to_body(),
        headers=headers,
    )


def _list_instances(
    status: str | None = None, name: str | None = None, limit: int = 50, offset: int = 0
) -> ApiCall[InstanceList]:
    """One page of instances, newest first (`GET /api/instances`)."""
    params: dict[str, Any] = {"limit": limit, "offset": offset}
    if status:
        params["status"] = status
    if name:
        params["name"] = name
    return ApiCall("GET", "/api/instances", InstanceList.model_validate, params=params)


def _get_instance(instance_id: str) -> ApiCall[InstanceView]:
    """One instance, by our id or its Novita id (`GET /api/instances/{id}`)."""
    return ApiCall("GET", _path(instance_id), InstanceView.model_validate)


def _start_instance(instance_id: str, webhook_url: str | None = None) -> ApiCall[OperationResponse]:
    """Ask for a start (`POST /api/instances/{id}/start`); the outcome is in `operations()`."""
    return _operation("POST", f"{_path(instance_id)}/start", webhook_url)


def _stop_instance(instance_id: str, webhook_url: str | None = None) -> ApiCall[OperationResponse]:
    """Ask for a stop (`POST /api/instances/{id}/stop`); the outcome is in `operations()`."""
    return _operation("POST", f"{_path(instance_id)}/stop", webhook_url)


def _delete_instance(
    instance_id: str, webhook_url: str | None = None
) -> ApiCall[OperationResponse]:
    """Ask for a delete (`DELETE /api/instances/{id}`); the outcome is in `operations()`."""
    return _operation("DELETE", _path(instance_id), webhook_url)


def _webhook_deliveries(instance_id: str) -> ApiCall[DeliveryList]:
    """The instance's webhook deliveries and their attempts, newest first."""
    return ApiCall("GET", f"{_path(instance_id)}/webhooks", DeliveryList.model_validate)


def _operations(instance_id: str) -> ApiCall[OperationRequestList]:
    """The instance's start/stop/delete requests and their outcomes, oldest first."""
    path = f"{_path(instance_id)}/operations"
    return ApiCall("GET", path, OperationRequestList.model_validate)


def _instance_events(instance_id: str, after: int = 0, limit: int = 200) -> ApiCall[EventList]:
    """A page of the instance's events (status changes and webhook events), oldest first."""
    params = {"after": after, "limit": limit}
    return ApiCall("GET", f"{_path(instance_id)}/events", EventList.model_validate, params=params)
