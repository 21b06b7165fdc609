"""A small typed client of the service's REST API, for the command line, scripts and benchmarks.

Answers come back as the API's own models (`novita_manager.domain.views`, re-exported here:
`InstanceView`, `InstanceList`, `CreateInstanceResponse`, `OperationResponse`,
`OperationRequestList`, `DeliveryList`), the ones the service serves, so
`model_dump(mode="json")` is the API's JSON. Every error envelope becomes `ApiResponseError`
(status, code, message, details, requestId) and a service that cannot be reached becomes
`ServiceUnreachable`, so callers can tell "the service said no" from "nobody answered".
`ManagerClient` is synchronous; `AsyncManagerClient` has the same methods for event loops.

Each endpoint is described once, by a function returning an `ApiCall` (method, path, query,
body, headers and how to read the answer); both clients execute those descriptions, so an
endpoint is added with one function and one line in each client.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from typing import Any, Concatenate, ParamSpec, Self, TypeVar

import httpx

from novita_manager.domain.catalogue import OfferList, OfferView, RegionList, TemplateList
from novita_manager.domain.events import EventList, EventView
from novita_manager.domain.views import (
    CreateInstanceResponse,
    DeliveryList,
    DeliveryView,
    InstanceList,
    InstanceView,
    OperationRequestList,
    OperationRequestView,
    OperationResponse,
)
from novita_manager.sdk.calls import (
    ApiCall,
    ApiResponseError,
    CreateInstance,
    ServiceError,
    ServiceUnreachable,
    _create_instance,
    _delete_instance,
    _get_instance,
    _instance_events,
    _list_instances,
    _operations,
    _start_instance,
    _stop_instance,
    _webhook_deliveries,
)
from novita_manager.sdk.catalogue import _offers, _regions, _templates
from novita_manager.sdk.costs import costs_call
from novita_manager.sdk.events import StreamEvent, follow_events, follow_events_async
from novita_manager.sdk.names import AmbiguousName, find_instance

__all__ = [
    "DEFAULT_URL",
    "AmbiguousName",
    "ApiCall",
    "ApiResponseError",
    "AsyncManagerClient",
    "CreateInstance",
    "CreateInstanceResponse",
    "DeliveryList",
    "DeliveryView",
    "EventList",
    "EventView",
    "InstanceList",
    "InstanceView",
    "ManagerClient",
    "OfferList",
    "OfferView",
    "OperationRequestList",
    "OperationRequestView",
    "OperationResponse",
    "RegionList",
    "ServiceError",
    "ServiceUnreachable",
    "StreamEvent",
    "TemplateList",
]

DEFAULT_URL = "http://127.0.0.1:3000"

T = TypeVar("T")
P = ParamSpec("P")


F = TypeVar("F", bound=Callable[..., Any])


def _named_after(build: Callable[..., Any], method: F) -> F:
    """Give the client method the endpoint function's name, docstring and parameters."""
    name = build.__name__.removeprefix("_")
    method.__name__ = method.__qualname__ = name
    method.__doc__ = build.__doc__
    signature = inspect.signature(build)
    self_parameter = inspect.Parameter("self", inspect.Parameter.POSITIONAL_ONLY)
    method.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[self_parameter, *signature.parameters.values()],
        return_annotation=inspect.Signature.empty,
    )
    return method


def _sync(build: Callable[P, ApiCall[T]]) -> Callable[Concatenate[ManagerClient, P], T]:
    """A `ManagerClient` method that sends what `build` describes."""

    def method(self: ManagerClient, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return self.send(build(*args, **kwargs))

    return _named_after(build, method)


def _async(
    build: Callable[P, ApiCall[T]],
) -> Callable[Concatenate[AsyncManagerClient, P], Coroutine[Any, Any, T]]:
    """An `AsyncManagerClient` method that sends what `build` describes."""

    async def method(self: AsyncManagerClient, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return await self.send(build(*args, **kwargs))

    return _named_after(build, method)


def _headers(api_key: str | None) -> dict[str, str]:
    headers = {"Accept": "application/json", "User-Agent": "novita-manager-cli"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    return headers


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
        self.api_key = api_key
        self.timeout = timeout
        self._http = httpx.Client(
            base_url=self.base_url, headers=_headers(api_key), timeout=timeout, transport=transport
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def send(self, call: ApiCall[T]) -> T:
        """Send one described request and read its answer."""
        try:
            response = self._http.request(
                call.method, call.path, params=call.params, json=call.json, headers=call.headers
            )
        except httpx.TransportError as error:
            raise ServiceUnreachable(self.base_url, str(error) or type(error).__name__) from None
        return call.read(response)

    create_instance = _sync(_create_instance)
    list_instances = _sync(_list_instances)
    get_instance = _sync(_get_instance)
    start_instance = _sync(_start_instance)
    stop_instance = _sync(_stop_instance)
    delete_instance = _sync(_delete_instance)
    webhook_deliveries = _sync(_webhook_deliveries)
    operations = _sync(_operations)
    instance_events = _sync(_instance_events)
    offers = _sync(_offers)
    regions = _sync(_regions)
    templates = _sync(_templates)
    costs = _sync(costs_call)

    def events(
        self,
        instance_id: str | None = None,
        last_event_id: int | None = None,
        reconnect_for: float = 30.0,
        on_position: Callable[[int], None] | None = None,
    ) -> Iterator[StreamEvent]:
        """Live events (`GET /api/events`), reconnecting with Last-Event-ID when the
        connection drops (sdk/events.py); only `instance_id`'s when given."""
        return follow_events(
            self._http,
            instance_id=instance_id,
            last_event_id=last_event_id,
            reconnect_for=reconnect_for,
            on_position=on_position,
        )

    def find_instance(self, reference: str) -> InstanceView:
        """The instance named by our id, its Novita id or its (unique) name (sdk/names.py);
        `AmbiguousName` when several live instances have that name."""
        return find_instance(self, reference)

    def copy(self) -> ManagerClient:
        """Another client of the same service with the same key (for another thread)."""
        return ManagerClient(self.base_url, api_key=self.api_key, timeout=self.timeout)


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

    async def send(self, call: ApiCall[T]) -> T:
        """Send one described request and read its answer."""
        try:
            response = await self._http.request(
                call.method, call.path, params=call.params, json=call.json, headers=call.headers
            )
        except httpx.TransportError as error:
            raise ServiceUnreachable(self.base_url, str(error) or type(error).__name__) from None
        return call.read(response)

    create_instance = _async(_create_instance)
    list_instances = _async(_list_instances)
    get_instance = _async(_get_instance)
    start_instance = _async(_start_instance)
    stop_instance = _async(_stop_instance)
    delete_instance = _async(_delete_instance)
    webhook_deliveries = _async(_webhook_deliveries)
    operations = _async(_operations)
    instance_events = _async(_instance_events)
    offers = _async(_offers)
    regions = _async(_regions)
    templates = _async(_templates)
    costs = _async(costs_call)

    def events(
        self,
        instance_id: str | None = None,
        last_event_id: int | None = None,
        reconnect_for: float = 30.0,
        on_position: Callable[[int], None] | None = None,
    ) -> AsyncIterator[StreamEvent]:
        """Live events, as `ManagerClient.events`."""
        return follow_events_async(
            self._http,
            instance_id=instance_id,
            last_event_id=last_event_id,
            reconnect_for=reconnect_for,
            on_position=on_position,
        )
