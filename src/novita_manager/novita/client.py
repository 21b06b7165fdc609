"""The async Novita API client: one method per endpoint the service uses.

`NovitaClient` is what the rest of the service holds: one per process, closed on shutdown. The
request loop (breaker, limits, retries, create never resent) is inherited from
`session.NovitaSession`, the reply shapes come from `parsing.py` and the paging walk from
`listing.py`, so this module is only the map from Novita's endpoints to typed methods.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from datetime import datetime

from novita_manager.http_client import Transport
from novita_manager.metrics import Metrics
from novita_manager.novita.circuit import CircuitBreaker
from novita_manager.novita.errors import NovitaNotFound
from novita_manager.novita.gpu_metrics import (
    METRICS_PATH,
    Point,
    host_metrics_url,
    parse_gpu_utilization,
)
from novita_manager.novita.listed import (
    ListedInstance,
    ListedPage,
    parse_listed_instance,
    parse_listed_page,
)
from novita_manager.novita.listing import Listing, ListingProgress, walk_instance_pages
from novita_manager.novita.models import (
    Cluster,
    CreateInstanceRequest,
    Instance,
    InstancePage,
    Product,
    Template,
)
from novita_manager.novita.options import ClientOptions
from novita_manager.novita.parsing import (
    Params,
    ignore_body,
    params,
    parse_clusters,
    parse_created_id,
    parse_instance,
    parse_page,
    parse_products,
    parse_template,
)
from novita_manager.novita.readings import REQUESTED_PAGE_SIZE
from novita_manager.novita.session import NovitaSession

__all__ = ["Listing", "ListingProgress", "NovitaClient"]


class NovitaClient(NovitaSession):
    """Async client for the Novita GPU-instance API v1; one per service, closed on shutdown."""

    @classmethod
    def from_options(
        cls,
        options: ClientOptions,
        metrics: Metrics | None = None,
        *,
        transport: Transport | None = None,
    ) -> NovitaClient:
        """A client with `options`, its own breaker, calls counted in `metrics` when given."""
        breaker = CircuitBreaker(options.circuit_failure_threshold, options.circuit_reset_timeout)
        return cls(
            base_url=options.base_url,
            api_key=options.api_key,
            timeout=options.timeout,
            max_retries=options.max_retries,
            backoff_base=options.backoff_base,
            max_concurrency=options.max_concurrency,
            rate_limit=options.rate_limit,
            breaker=breaker,
            metrics=metrics,
            transport=transport,
        )

    # ----- catalogue -------------------------------------------------------------------------

    async def list_clusters(self) -> list[Cluster]:
        return await self.call("GET", "/clusters", parse_clusters)

    async def list_products(
        self,
        *,
        cluster_id: str | None = None,
        gpu_num: int | None = None,
        product_name: str | None = None,
        billing_method: str | None = None,
    ) -> list[Product]:
        query = params(
            clusterId=cluster_id,
            gpuNum=gpu_num,
            productName=product_name,
            billingMethod=billing_method,
        )
        return await self.call("GET", "/products", parse_products, params=query)

    async def get_template(self, template_id: str) -> Template:
        query = {"templateId": template_id}
        return await self.call("GET", "/template", parse_template, params=query)

    # ----- instances -------------------------------------------------------------------------

    def list_instance_pages(
        self,
        *,
        name: str | None = None,
        status: str | None = None,
        product_name: str | None = None,
        page_size: int = REQUESTED_PAGE_SIZE,
        progress: ListingProgress | None = None,
    ) -> AsyncIterator[InstancePage]:
        """Pages of GET /gpu/instances, each with only ids not yielded before (see
        `listing.walk_instance_pages` for how every paging reading is handled)."""
        return walk_instance_pages(
            self._fetch_page,
            name=name,
            status=status,
            product_name=product_name,
            page_size=page_size,
            progress=progress,
        )

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

    def list_listed_pages(
        self, *, page_size: int = REQUESTED_PAGE_SIZE, progress: ListingProgress | None = None
    ) -> AsyncIterator[ListedPage]:
        """The whole account's pages as the status sync reads them (`listed.py`: orjson and only
        the fields an observation is made of), walked like `list_instance_pages`."""
        return walk_instance_pages(
            self._fetch_listed_page,
            name=None,
            status=None,
            product_name=None,
            page_size=page_size,
            progress=progress,
        )

    async def get_instance(self, instance_id: str, *, urgent: bool = False) -> Instance:
        """`urgent`: before other waiting calls (a running instance's details, `slots.py`)."""
        query = {"instanceId": instance_id}
        return await self.call("GET", "/gpu/instance", parse_instance, params=query, urgent=urgent)

    async def get_listed_instance(
        self, instance_id: str, *, urgent: bool = False
    ) -> ListedInstance:
        """The instance as the status sync reads a listed one: for callers that only summarise
        it (`domain.observations.summarize`), without the model's whole validation."""
        query = {"instanceId": instance_id}
        return await self.call(
            "GET", "/gpu/instance", parse_listed_instance, params=query, urgent=urgent
        )

    async def create_instance(self, req: CreateInstanceRequest) -> str:
        """Create and return the new instance id. Raises NovitaOutcomeUnknown, never resends, when
        the request may have reached the server without a clear answer."""
        return await self.call(
            "POST", "/gpu/instance/create", parse_created_id, body=req.to_body(), create=True
        )

    async def start_instance(self, instance_id: str) -> None:
        await self._action("start", instance_id)

    async def stop_instance(self, instance_id: str) -> None:
        await self._action("stop", instance_id)

    async def delete_instance(self, instance_id: str) -> None:
        await self._action("delete", instance_id)

    async def migrate_instance(self, instance_id: str) -> None:
        await self._action("migrate", instance_id)

    async def gpu_utilization(
        self, instance_id: str, start: datetime, end: datetime
    ) -> list[Point]:
        """GPU utilisation (time, percent) over [start, end]; see `gpu_metrics.py` for what is
        assumed (the path under the base URL, else at the host's root)."""
        query: dict[str, str | int] = {
            "instanceId": instance_id,
            "startTime": math.floor(start.timestamp()),
            "endTime": math.ceil(end.timestamp()),
        }
        try:
            return await self.call("GET", METRICS_PATH, parse_gpu_utilization, params=query)
        except NovitaNotFound:
            url = host_metrics_url(self.base_url)
            return await self.call("GET", url, parse_gpu_utilization, params=query)

    async def _action(self, action: str, instance_id: str) -> None:
        await self.call(
            "POST", f"/gpu/instance/{action}", ignore_body, body={"instanceId": instance_id}
        )

    async def _fetch_listed_page(self, query: Params) -> ListedPage:
        return await self.call("GET", "/gpu/instances", parse_listed_page, params=query)

    async def _fetch_page(self, query: Params) -> InstancePage:
        return await self.call("GET", "/gpu/instances", parse_page, params=query)
