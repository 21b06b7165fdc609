"""A small typed client of the service's REST API, for the command line, scripts and benchmarks.

Responses come back as the API's JSON (typed dicts, so `--json` can print them unchanged). Every
error envelope becomes `ApiResponseError` (status, code, message, details, requestId) and a
service that cannot be reached becomes `ServiceUnreachable`, so callers can tell "the service
said no" from "nobody answered". `ManagerClient` is synchronous; `AsyncManagerClient` has the
same methods for event loops.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NotRequired, Self, TypedDict, cast
from urllib.parse import quote

import httpx

DEFAULT_URL = "http://127.0.0.1:3000"


class PortMapping(TypedDict):
    port: int
    endpoint: str | None
    type: str | None


class InstanceView(TypedDict):
    """`GET /api/instances/{id}` (CONTRACT.md); optional timestamps may be null."""

    id: str
    name: str
    status: str
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
    portMappings: list[PortMapping]
    connectionDetails: dict[str, str | None]
    createdAt: str
    startedAt: NotRequired[str | None]
    readyAt: NotRequired[str | None]
    failedAt: NotRequired[str | None]
    stoppedAt: NotRequired[str | None]
    deletedAt: NotRequired[str | None]
    lastError: NotRequired[str | None]
    lastSyncedAt: NotRequired[str | None]
    stale: bool


class InstanceList(TypedDict):
    instances: list[InstanceView]
    total: int
    limit: int
    offset: int


class CreateResult(TypedDict):
    instanceId: str
    status: str
    message: str
    estimatedReadyTime: str
    region: str
    productId: NotRequired[str | None]
    pricePerHour: NotRequired[float | None]


class OperationResult(TypedDict):
    instanceId: str
    status: str
    message: str
    requestSeq: int  # the request's number; its outcome is in `operations()`


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
    """An error answer; `body` is the envelope as sent (or None when it was not JSON)."""

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


def _headers(api_key: str | None) -> dict[str, str]:
    headers = {"Accept": "application/json", "User-Agent": "novita-manager-cli"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    return headers


def _operation_body(webhook_url: str | None) -> dict[str, Any] | None:
    return {"webhookUrl": webhook_url} if webhook_url else None


def _list_params(status: str | None, name: str | None, limit: int, offset: int) -> dict[str, Any]:
    params: dict[str, Any] = {"limit": limit, "offset": offset}
    if status:
        params["status"] = status
    if name:
        params["name"] = name
    return params


def _create_headers(idempotency_key: str | None) -> dict[str, str]:
    return {"Idempotency-Key": idempotency_key} if idempotency_key else {}


def _decode(response: httpx.Response) -> Any:
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.is_success:
        if body is None:
            raise ApiResponseError(response.status_code, None, "the answer is not JSON")
        return body
    raise ApiResponseError(response.status_code, body, response.text)


def _path(instance_id: str) -> str:
    return f"/api/instances/{quote(instance_id, safe='')}"


class ManagerClient:
    """Synchronous client; `base_url` is the service root, e.g. `http://127.0.0.1:3000`."""

    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        api_key: str | None = None,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(
            base_url=self.base_url, headers=_headers(api_key), timeout=timeout, transport=transport
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as error:
            raise ServiceUnreachable(self.base_url, str(error) or type(error).__name__) from None
        return _decode(response)

    def create_instance(
        self, request: CreateInstance, idempotency_key: str | None = None
    ) -> CreateResult:
        headers = _create_headers(idempotency_key)
        body = request.to_body()
        return cast(
            CreateResult, self._request("POST", "/api/instances", json=body, headers=headers)
        )

    def list_instances(
        self, status: str | None = None, name: str | None = None, limit: int = 50, offset: int = 0
    ) -> InstanceList:
        params = _list_params(status, name, limit, offset)
        return cast(InstanceList, self._request("GET", "/api/instances", params=params))

    def get_instance(self, instance_id: str) -> InstanceView:
        return cast(InstanceView, self._request("GET", _path(instance_id)))

    def start_instance(self, instance_id: str, webhook_url: str | None = None) -> OperationResult:
        body = _operation_body(webhook_url)
        return cast(
            OperationResult, self._request("POST", f"{_path(instance_id)}/start", json=body)
        )

    def stop_instance(self, instance_id: str, webhook_url: str | None = None) -> OperationResult:
        body = _operation_body(webhook_url)
        path = f"{_path(instance_id)}/stop"
        return cast(OperationResult, self._request("POST", path, json=body))

    def delete_instance(self, instance_id: str, webhook_url: str | None = None) -> OperationResult:
        body = _operation_body(webhook_url)
        return cast(OperationResult, self._request("DELETE", _path(instance_id), json=body))

    def webhook_deliveries(self, instance_id: str) -> dict[str, Any]:
        return cast(dict[str, Any], self._request("GET", f"{_path(instance_id)}/webhooks"))

    def operations(self, instance_id: str) -> dict[str, Any]:
        """The instance's start/stop/delete requests and their outcomes, oldest first."""
        return cast(dict[str, Any], self._request("GET", f"{_path(instance_id)}/operations"))


class AsyncManagerClient:
    """The same API for asyncio code (benchmarks, async scripts)."""

    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        api_key: str | None = None,
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
        limits: httpx.Limits | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            headers=_headers(api_key),
            timeout=timeout,
            transport=transport,
            limits=limits or httpx.Limits(max_connections=100, max_keepalive_connections=20),
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.aclose()

    async def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = await self._http.request(method, path, **kwargs)
        except httpx.TransportError as error:
            raise ServiceUnreachable(self.base_url, str(error) or type(error).__name__) from None
        return _decode(response)

    async def create_instance(
        self, request: CreateInstance, idempotency_key: str | None = None
    ) -> CreateResult:
        headers = _create_headers(idempotency_key)
        body = request.to_body()
        return cast(
            CreateResult, await self._request("POST", "/api/instances", json=body, headers=headers)
        )

    async def list_instances(
        self, status: str | None = None, name: str | None = None, limit: int = 50, offset: int = 0
    ) -> InstanceList:
        params = _list_params(status, name, limit, offset)
        return cast(InstanceList, await self._request("GET", "/api/instances", params=params))

    async def get_instance(self, instance_id: str) -> InstanceView:
        return cast(InstanceView, await self._request("GET", _path(instance_id)))

    async def start_instance(
        self, instance_id: str, webhook_url: str | None = None
    ) -> OperationResult:
        body = _operation_body(webhook_url)
        path = f"{_path(instance_id)}/start"
        return cast(OperationResult, await self._request("POST", path, json=body))

    async def stop_instance(
        self, instance_id: str, webhook_url: str | None = None
    ) -> OperationResult:
        body = _operation_body(webhook_url)
        path = f"{_path(instance_id)}/stop"
        return cast(OperationResult, await self._request("POST", path, json=body))

    async def delete_instance(
        self, instance_id: str, webhook_url: str | None = None
    ) -> OperationResult:
        body = _operation_body(webhook_url)
        return cast(OperationResult, await self._request("DELETE", _path(instance_id), json=body))

    async def webhook_deliveries(self, instance_id: str) -> dict[str, Any]:
        return cast(dict[str, Any], await self._request("GET", f"{_path(instance_id)}/webhooks"))

    async def operations(self, instance_id: str) -> dict[str, Any]:
        """The instance's start/stop/delete requests and their outcomes, oldest first."""
        path = f"{_path(instance_id)}/operations"
        return cast(dict[str, Any], await self._request("GET", path))
