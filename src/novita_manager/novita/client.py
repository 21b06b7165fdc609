"""The async Novita API client: one httpx pool, retries, circuit breaker, concurrency limits.

Every HTTP attempt goes through `_attempt`, which (in order) asks the circuit breaker, takes a
concurrency slot (an `asyncio.Semaphore` sized like the pool, so calls run in parallel rather than
through a queue), takes a rate-limit token when a limit is set, sends, then records the verdict on
the breaker, the metrics and the log. `_call` repeats attempts on 429, 5xx and transport errors
with exponential backoff or the server's Retry-After (see `retry.py` for why this is a plain loop).

Create is special: Novita's create is not idempotent, so once the request may have reached the
server (read timeout, dropped connection, 5xx, malformed reply) it is never resent; the caller gets
NovitaOutcomeUnknown and must look for the instance first. A connect failure (nothing left this
machine) and a 429 (the server refused it) are safe to retry.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self, TypeVar

import httpx

from novita_manager.backoff import backoff_delay, parse_retry_after
from novita_manager.config import Settings
from novita_manager.logging import get_logger
from novita_manager.metrics import Metrics
from novita_manager.novita.circuit import CircuitBreaker, CircuitState
from novita_manager.novita.errors import (
    NovitaBadRequest,
    NovitaError,
    NovitaOutcomeUnknown,
    NovitaRateLimited,
    NovitaServerError,
    NovitaTransportError,
    NovitaUnavailable,
    error_for_status,
)
from novita_manager.novita.models import (
    Cluster,
    CreateInstanceRequest,
    Instance,
    InstancePage,
    Product,
    RepositoryAuth,
    Template,
)
from novita_manager.novita.ratelimit import TokenBucket
from novita_manager.novita.readings import REQUESTED_PAGE_SIZE

T = TypeVar("T")
Params = Mapping[str, str | int]

API_VERSION_PREFIX = "/v1"
MAX_LISTING_PAGES = 2000  # 40,000 instances at a cap of 20 per page
DEFAULT_MAX_RETRY_AFTER = 60.0  # a longer Retry-After is raised to the engine, not slept on

log = get_logger(__name__)


@dataclass
class ListingProgress:
    """What one walk over GET /gpu/instances learnt (filled while it runs)."""

    pages: int = 0  # pages received
    distinct: int = 0  # distinct instance ids seen
    total: int = 0  # `total` of the last page
    total_reported: bool = True
    ended: bool = False  # an empty or short page proved the end
    first_page_num: int = 0  # 1 when pageNum=0 was refused
    zero_is_one: bool = False  # pageNum=0 answered like pageNum=1
    capped_page_size: int | None = None  # the size the server actually gave, when capped

    @property
    def complete(self) -> bool:
        """Provably every match: `total` distinct ids seen (when a total was reported), or the
        end reached without a total to compare with."""
        if self.total_reported:
            return self.distinct >= self.total
        return self.ended


@dataclass(frozen=True)
class Listing:
    """The result of listing instances: each id once, and whether that is provably all."""

    instances: list[Instance]
    complete: bool
    progress: ListingProgress = field(default_factory=ListingProgress)


def _json(response: httpx.Response) -> Any:
    return response.json()  # ValueError on an empty or non-JSON body: "malformed"


def _items(data: Any, key: str) -> list[Any]:
    """`{key: [...]}` or a bare list; null means empty; anything else is malformed."""
    items = data.get(key) if isinstance(data, dict) else data
    if items is None:
        return []
    if not isinstance(items, list):
        raise TypeError(f"expected a list under {key!r}")
    return items


def _parse_clusters(response: httpx.Response) -> list[Cluster]:
    return [Cluster.model_validate(item) for item in _items(_json(response), "data")]


def _parse_products(response: httpx.Response) -> list[Product]:
    return [Product.model_validate(item) for item in _items(_json(response), "data")]


def _parse_auths(response: httpx.Response) -> list[RepositoryAuth]:
    return [RepositoryAuth.model_validate(item) for item in _items(_json(response), "data")]


def _parse_template(response: httpx.Response) -> Template:
    data = _json(response)
    if isinstance(data, dict) and isinstance(data.get("template"), dict):
        data = data["template"]
    return Template.model_validate(data)


def _parse_instance(response: httpx.Response) -> Instance:
    data = _json(response)
    if isinstance(data, dict) and "id" not in data and isinstance(data.get("instance"), dict):
        data = data["instance"]
    return Instance.model_validate(data)


def _parse_page(response: httpx.Response) -> InstancePage:
    data = _json(response)
    if not isinstance(data, dict):
        raise TypeError("expected an object with instances and total")
    return InstancePage.model_validate(data)


def _parse_created_id(response: httpx.Response) -> str:
    data = _json(response)
    value = data.get("id") if isinstance(data, dict) else None
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value:
        raise ValueError("create reply has no instance id")
    return value


def _ignore_body(_response: httpx.Response) -> None:
    """Actions return nothing, `{}`, non-JSON or `{instanceId, state}`: never depend on it."""


def _may_have_reached_server(error: NovitaError) -> bool:
    if isinstance(error, NovitaServerError):
        return True
    return isinstance(error, NovitaTransportError) and error.request_sent


class NovitaClient:
    """Async client for the Novita GPU-instance API v1; one per service, closed on shutdown."""

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str,
        timeout: float = 30.0,
        max_retries: int = 3,
        backoff_base: float = 1.0,
        max_concurrency: int = 32,
        rate_limit: float = 0.0,
        breaker: CircuitBreaker | None = None,
        metrics: Metrics | None = None,
        max_retry_after: float = DEFAULT_MAX_RETRY_AFTER,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if not api_key:
            raise ValueError("api_key must not be empty")
        if max_concurrency < 1:
            raise ValueError("max_concurrency must be at least 1")
        root = base_url.rstrip("/")
        if not root.endswith(API_VERSION_PREFIX):
            root += API_VERSION_PREFIX
        self.base_url = root
        self._max_retries = max(0, max_retries)
        self._backoff_base = backoff_base
        self._max_retry_after = max_retry_after
        self._metrics = metrics
        self._semaphore = asyncio.Semaphore(max_concurrency)
        self._limiter = TokenBucket(rate_limit) if rate_limit > 0 else None
        self._breaker = breaker if breaker is not None else CircuitBreaker(5, 30.0)
        self._breaker.add_listener(self._on_circuit_change)
        if metrics is not None:
            metrics.set_circuit_state(self._breaker.state)
        self._http = httpx.AsyncClient(
            base_url=root,
            headers={
                "Authorization": f"Bearer {api_key}",
                "Content-Type": "application/json",
                "Accept": "application/json",
            },
            timeout=httpx.Timeout(timeout),
            limits=httpx.Limits(
                max_connections=max_concurrency, max_keepalive_connections=max_concurrency
            ),
            transport=transport,
            follow_redirects=False,
        )

    @classmethod
    def from_settings(cls, settings: Settings, metrics: Metrics | None = None) -> NovitaClient:
        breaker = CircuitBreaker(settings.circuit_failure_threshold, settings.circuit_reset_timeout)
        return cls(
            base_url=settings.novita_api_base_url,
            api_key=settings.novita_key,
            timeout=settings.request_timeout,
            max_retries=settings.max_retry_attempts,
            backoff_base=settings.retry_backoff_base,
            max_concurrency=settings.max_concurrent_requests,
            rate_limit=settings.upstream_rate_limit,
            breaker=breaker,
            metrics=metrics,
        )

    @property
    def breaker(self) -> CircuitBreaker:
        return self._breaker

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # ----- catalogue -------------------------------------------------------------------------

    async def list_clusters(self) -> list[Cluster]:
        return await self._call("GET", "/clusters", _parse_clusters)

    async def list_products(
        self,
        *,
        cluster_id: str | None = None,
        gpu_num: int | None = None,
        product_name: str | None = None,
        billing_method: str | None = None,
    ) -> list[Product]:
        params = _params(
            clusterId=cluster_id,
            gpuNum=gpu_num,
            productName=product_name,
            billingMethod=billing_method,
        )
        return await self._call("GET", "/products", _parse_products, params=params)

    async def get_template(self, template_id: str) -> Template:
        params = {"templateId": template_id}
        return await self._call("GET", "/template", _parse_template, params=params)

    async def list_repository_auths(self) -> list[RepositoryAuth]:
        return await self._call("GET", "/repository/auths", _parse_auths)

    # ----- instances -------------------------------------------------------------------------

    async def list_instance_pages(
        self,
        *,
        name: str | None = None,
        status: str | None = None,
        product_name: str | None = None,
        page_size: int = REQUESTED_PAGE_SIZE,
        progress: ListingProgress | None = None,
    ) -> AsyncIterator[InstancePage]:
        """Yield pages of GET /gpu/instances, each with only ids not yielded before.

        Correct whichever page base applies (readings `page_base`, `page_zero`) and when the
        server silently caps pageSize (`page_size_cap`): starts at pageNum=0 (restarts at 1 when
        0 is refused), drops items already seen (a shifted list, or pageNum 0 answering like 1),
        continues with the page size actually returned, and stops when `total` distinct ids
        were seen, a page is empty or short, or a page brings nothing new twice (a server that
        ignores paging). Whether the walk proved it saw everything ends up in `progress`.
        """
        if page_size < 1:
            raise ValueError("page_size must be at least 1")
        state = progress if progress is not None else ListingProgress()
        seen: set[str] = set()
        page_num = 0
        size = page_size
        repeats = 0
        while True:
            params = _params(
                name=name,
                status=status,
                productName=product_name,
                pageSize=size,
                pageNum=page_num,
            )
            try:
                page = await self._call("GET", "/gpu/instances", _parse_page, params=params)
            except NovitaBadRequest:
                if page_num == 0 and state.pages == 0:
                    page_num = 1  # base 1 with pageNum=0 refused
                    state.first_page_num = 1
                    continue
                raise
            state.pages += 1
            state.total = page.total
            state.total_reported = page.total_reported
            items = page.instances
            if state.pages == 1 and len(items) < size and len(items) < page.total:
                size = max(len(items), 1)  # a silent cap: continue with what the server gives
                state.capped_page_size = size
            fresh = [item for item in items if item.id not in seen]
            if items and not fresh:
                repeats += 1
                if page_num == 1 and state.first_page_num == 0 and repeats == 1:
                    state.zero_is_one = True  # base 1 with pageNum=0 answering page 1
                else:
                    break  # the server ignores paging: stop, not proved complete
            seen.update(item.id for item in fresh)
            state.distinct = len(seen)
            if fresh:
                yield page.model_copy(update={"instances": fresh})
            if not items:
                state.ended = True
                break
            if page.total_reported and len(seen) >= page.total:
                break
            if len(items) < size and not (page_num == 1 and state.zero_is_one and not fresh):
                state.ended = True  # a short page is the last one
                break
            if state.pages >= MAX_LISTING_PAGES or (
                page.total_reported and state.pages > page.total // size + 3
            ):
                break  # bounded: a server that keeps bringing a trickle of new ids
            page_num += 1

    async def list_all_instances(
        self,
        *,
        name: str | None = None,
        status: str | None = None,
        product_name: str | None = None,
        page_size: int = REQUESTED_PAGE_SIZE,
    ) -> Listing:
        """Every instance over all pages, each id once, and whether that is provably all.

        Callers must never conclude that an instance is absent unless `complete` is True.
        """
        progress = ListingProgress()
        instances: list[Instance] = []
        async for page in self.list_instance_pages(
            name=name,
            status=status,
            product_name=product_name,
            page_size=page_size,
            progress=progress,
        ):
            instances.extend(page.instances)
        return Listing(instances=instances, complete=progress.complete, progress=progress)

    async def list_instances(
        self,
        *,
        name: str | None = None,
        status: str | None = None,
        product_name: str | None = None,
        page_size: int = REQUESTED_PAGE_SIZE,
    ) -> AsyncIterator[Instance]:
        """Every instance over all pages, each id once (see `list_all_instances` for whether
        the walk proved it saw them all)."""
        pages = self.list_instance_pages(
            name=name, status=status, product_name=product_name, page_size=page_size
        )
        async for page in pages:
            for instance in page.instances:
                yield instance

    async def get_instance(self, instance_id: str) -> Instance:
        params = {"instanceId": instance_id}
        return await self._call("GET", "/gpu/instance", _parse_instance, params=params)

    async def create_instance(self, req: CreateInstanceRequest) -> str:
        """Create and return the new instance id. Raises NovitaOutcomeUnknown, never resends, when
        the request may have reached the server without a clear answer."""
        return await self._call(
            "POST", "/gpu/instance/create", _parse_created_id, body=req.to_body(), create=True
        )

    async def start_instance(self, instance_id: str) -> None:
        await self._action("start", instance_id)

    async def stop_instance(self, instance_id: str) -> None:
        await self._action("stop", instance_id)

    async def restart_instance(self, instance_id: str) -> None:
        await self._action("restart", instance_id)

    async def delete_instance(self, instance_id: str) -> None:
        await self._action("delete", instance_id)

    async def migrate_instance(self, instance_id: str) -> None:
        await self._action("migrate", instance_id)

    async def _action(self, action: str, instance_id: str) -> None:
        await self._call(
            "POST", f"/gpu/instance/{action}", _ignore_body, body={"instanceId": instance_id}
        )

    # ----- machinery -------------------------------------------------------------------------

    async def _call(
        self,
        method: str,
        path: str,
        parse: Callable[[httpx.Response], T],
        *,
        params: Params | None = None,
        body: dict[str, Any] | None = None,
        create: bool = False,
    ) -> T:
        endpoint = f"{method} {path}"
        attempt = 0
        while True:
            attempt += 1
            try:
                return await self._attempt(method, path, endpoint, attempt, parse, params, body)
            except NovitaError as error:
                if create and _may_have_reached_server(error):
                    log.warning(
                        "novita_create_outcome_unknown",
                        method=method,
                        path=path,
                        attempt=attempt,
                        outcome=error.outcome,
                        status=error.status,
                    )
                    raise NovitaOutcomeUnknown(
                        f"create may or may not have happened: {error.message}",
                        cause=error,
                        status=error.status,
                        reason=error.reason,
                        endpoint=endpoint,
                    ) from error
                delay = self._retry_delay(error, attempt)
                if delay is None:
                    raise
                if self._metrics is not None:
                    self._metrics.record_retry(endpoint)
                log.info(
                    "novita_retry",
                    method=method,
                    path=path,
                    attempt=attempt,
                    outcome=error.outcome,
                    status=error.status,
                    delay_ms=round(delay * 1000),
                )
                await asyncio.sleep(delay)

    def _retry_delay(self, error: NovitaError, attempt: int) -> float | None:
        """Seconds before the next attempt, or None to give up and raise `error`."""
        if attempt > self._max_retries:
            return None
        if not isinstance(error, NovitaRateLimited | NovitaServerError | NovitaTransportError):
            return None
        if error.retry_after is not None:
            return error.retry_after if error.retry_after <= self._max_retry_after else None
        return backoff_delay(attempt, self._backoff_base)

    async def _attempt(
        self,
        method: str,
        path: str,
        endpoint: str,
        attempt: int,
        parse: Callable[[httpx.Response], T],
        params: Params | None,
        body: dict[str, Any] | None,
    ) -> T:
        try:
            self._breaker.before_call()
        except NovitaUnavailable as unavailable:
            unavailable.endpoint = endpoint
            self._finish(method, path, endpoint, attempt, unavailable.outcome, None, 0.0)
            raise
        decided = False
        try:
            async with self._semaphore:
                if self._limiter is not None:
                    await self._limiter.acquire()
                started = time.perf_counter()
                try:
                    response = await self._http.request(method, path, params=params, json=body)
                except httpx.TransportError as exc:
                    self._breaker.record_failure()
                    decided = True
                    failed = _transport_error(exc, endpoint)
                    elapsed = time.perf_counter() - started
                    self._finish(method, path, endpoint, attempt, failed.outcome, None, elapsed)
                    raise failed from exc
            elapsed = time.perf_counter() - started
            status = response.status_code
            if status >= 500:
                self._breaker.record_failure()
            else:
                self._breaker.record_success()  # any reply below 500 proves the upstream is up
            decided = True
        finally:
            if not decided:
                self._breaker.release()
        if 200 <= status < 300:
            try:
                result = parse(response)
            except (ValueError, TypeError, KeyError) as exc:  # pydantic's ValidationError too
                self._finish(method, path, endpoint, attempt, "malformed", status, elapsed)
                raise NovitaTransportError(
                    f"malformed reply: {type(exc).__name__}",
                    outcome="malformed",
                    request_sent=True,
                    status=status,
                    endpoint=endpoint,
                ) from exc
            self._finish(method, path, endpoint, attempt, "ok", status, elapsed)
            return result
        retry_after = (
            parse_retry_after(response.headers.get("Retry-After")) if status in (429, 503) else None
        )
        error = error_for_status(status, response.text, endpoint=endpoint, retry_after=retry_after)
        self._finish(method, path, endpoint, attempt, error.outcome, status, elapsed, error.reason)
        raise error

    def _finish(
        self,
        method: str,
        path: str,
        endpoint: str,
        attempt: int,
        outcome: str,
        status: int | None,
        seconds: float,
        reason: str | None = None,
    ) -> None:
        """Count and log one attempt (method, path, status, duration, attempt); never headers."""
        if self._metrics is not None:
            self._metrics.record_upstream(endpoint, outcome, seconds)
        level = log.debug if outcome in ("ok", "not_found") else log.info
        level(
            "novita_call",
            method=method,
            path=path,
            status=status,
            outcome=outcome,
            reason=reason,
            duration_ms=round(seconds * 1000, 1),
            attempt=attempt,
        )

    def _on_circuit_change(self, state: CircuitState) -> None:
        if self._metrics is not None:
            self._metrics.set_circuit_state(state)
        log.warning("novita_circuit", state=state, base_url=self.base_url)


def _transport_error(exc: httpx.TransportError, endpoint: str) -> NovitaTransportError:
    """Classify an httpx failure; only a failed connect proves the request never left."""
    never_sent = isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)
    outcome = "timeout" if isinstance(exc, httpx.TimeoutException) else "network_error"
    detail = str(exc)[:200] or type(exc).__name__
    return NovitaTransportError(
        f"{type(exc).__name__}: {detail}",
        outcome=outcome,
        request_sent=not never_sent,
        endpoint=endpoint,
    )


def _params(**values: str | int | None) -> Params:
    return {key: value for key, value in values.items() if value is not None}
