"""`GET /metrics`: the service's Prometheus series (see `novita_manager.metrics`).

Gauges that describe stored state (instances by status, due rows, circuit state) are refreshed
from the database just before rendering, so a scrape always sees current values; counters and
histograms are fed where the events happen. Open when API_KEYS is set, like `/health`.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from novita_manager.api.health import checker_of
from novita_manager.api.worker_link import WorkerLink, merge_exposition
from novita_manager.logging import get_logger
from novita_manager.services import costs

log = get_logger(__name__)

router = APIRouter(tags=["health"])


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}},
    description="HTTP requests and latency, upstream calls by endpoint and outcome, retries, "
    "circuit state, cache hits and misses, pipeline rows processed, lag and due rows, webhook "
    "deliveries by outcome, instances by status, spend rate and cost to date by product and "
    "region. Series names start with `novita_manager_`.",
)
async def metrics(request: Request) -> Response:
    checker = checker_of(request)
    if checker is None:
        return Response("service starting\n", status_code=503, media_type="text/plain")
    await checker.refresh_gauges()
    try:
        await costs.refresh_cost_gauges(checker.runtime)
    except Exception as error:  # a scrape still answers with the other series
        log.warning("cost_metrics_refresh_failed", error=type(error).__name__)
    metrics = checker.runtime.metrics
    body = metrics.render()
    link: WorkerLink | None = getattr(request.app.state, "worker_link", None)
    if link is not None and checker.runtime.settings.service_role == "api":
        worker = await link.metrics_text()  # the pipelines' series, from the sibling process
        if worker is not None:
            body = merge_exposition(body, worker)
    return Response(body, media_type=metrics.content_type)
