"""Prometheus series of the service, one registry per running service.

A registry per `Metrics` object (not the global default) lets several services live in one test
process. Layers record through the small methods here so that series names stay in one place.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST

disable_created_metrics()  # type: ignore[no-untyped-call]  # the `_created` series double the output and nobody graphs them

CIRCUIT_STATE_VALUES = {"closed": 0, "half_open": 1, "open": 2}


class Metrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.http_requests = Counter(
            "novita_manager_http_requests_total",
            "HTTP requests answered, by method, route and status code.",
            ["method", "route", "status"],
            registry=r,
        )
        self.http_latency = Histogram(
            "novita_manager_http_request_duration_seconds",
            "HTTP request latency by method and route.",
            ["method", "route"],
            registry=r,
        )
        self.upstream_calls = Counter(
            "novita_manager_upstream_calls_total",
            "Novita API calls by endpoint and outcome (ok, not_found, client_error, "
            "rate_limited, server_error, timeout, network_error, circuit_open).",
            ["endpoint", "outcome"],
            registry=r,
        )
        self.upstream_latency = Histogram(
            "novita_manager_upstream_call_duration_seconds",
            "Novita API call latency by endpoint.",
            ["endpoint"],
            registry=r,
        )
        self.upstream_retries = Counter(
            "novita_manager_upstream_retries_total",
            "Retries of Novita API calls by endpoint.",
            ["endpoint"],
            registry=r,
        )
        self.circuit_state = Gauge(
            "novita_manager_circuit_state",
            "Upstream circuit breaker: 0 closed, 1 half-open, 2 open.",
            registry=r,
        )
        self.cache_events = Counter(
            "novita_manager_cache_events_total",
            "Catalogue cache lookups by cache (products, templates, clusters) and result.",
            ["cache", "result"],
            registry=r,
        )
        self.pipeline_processed = Counter(
            "novita_manager_pipeline_rows_processed_total",
            "Rows processed by background pipelines, by pipeline and outcome.",
            ["pipeline", "outcome"],
            registry=r,
        )
        self.pipeline_lag = Histogram(
            "novita_manager_pipeline_lag_seconds",
            "Delay between a row becoming due and a worker claiming it.",
            ["pipeline"],
            registry=r,
        )
        self.pipeline_backlog = Gauge(
            "novita_manager_pipeline_due_rows",
            "Rows due for processing, by pipeline (sampled).",
            ["pipeline"],
            registry=r,
        )
        self.webhook_deliveries = Counter(
            "novita_manager_webhook_deliveries_total",
            "Webhook delivery attempts by outcome (delivered, retry, failed, refused, skipped).",
            ["outcome"],
            registry=r,
        )
        self.webhook_lag = Histogram(
            "novita_manager_webhook_delivery_lag_seconds",
            "Delay from an event's commit to its delivery's first attempt, by that attempt's "
            "outcome.",
            ["outcome"],
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 1800),
            registry=r,
        )
        self.webhook_deferrals = Counter(
            "novita_manager_webhook_deferrals_total",
            "Webhook deliveries put back without an attempt, by reason (busy: the destination "
            "has its share in flight; open: its breaker is open; probing: a probe is out; "
            "ordering: an earlier event of the instance to the URL is pending).",
            ["reason"],
            registry=r,
        )
        self.webhook_waiting = Gauge(
            "novita_manager_webhook_deliveries_waiting",
            "Pending webhook deliveries by the state of their destination's breaker "
            "(closed, open, half_open) in this process (sampled).",
            ["state"],
            registry=r,
        )
        self.instances_by_status = Gauge(
            "novita_manager_instances",
            "Managed instances by status.",
            ["status"],
            registry=r,
        )
        self.requests_shed = Counter(
            "novita_manager_requests_shed_total",
            "/api requests refused at once with 503 SERVICE_UNAVAILABLE by admission control, by "
            "reason (in_flight: API_MAX_IN_FLIGHT reached; reads_in_flight: a read at "
            "API_MAX_READS_IN_FLIGHT; loop_lag: a read while the event loop was later than "
            "API_MAX_LOOP_LAG).",
            ["reason"],
            registry=r,
        )
        self.api_in_flight = Gauge(
            "novita_manager_api_requests_in_flight",
            "/api requests being served by this process now.",
            registry=r,
        )
        self.event_loop_lag = Gauge(
            "novita_manager_event_loop_lag_seconds",
            "How late this process's event loop is: the last wake-up of a 50 ms timer, or how "
            "overdue the next one is.",
            registry=r,
        )
        self.status_sync_pages = Counter(
            "novita_manager_status_sync_pages_total",
            "Pages of the account's instance listing read by the status sync.",
            registry=r,
        )
        self.status_sync_duration = Histogram(
            "novita_manager_status_sync_duration_seconds",
            "How long one run of the status sync took, by part (listing: reading the account's "
            "pages; record: evaluating and writing what they said).",
            ["part"],
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
            registry=r,
        )
        self.event_streams = Gauge(
            "novita_manager_event_streams_open",
            "Open GET /api/events streams on this process (capped by EVENTS_MAX_STREAMS).",
            registry=r,
        )

    def record_upstream(self, endpoint: str, outcome: str, seconds: float) -> None:
        self.upstream_calls.labels(endpoint, outcome).inc()
        self.upstream_latency.labels(endpoint).observe(seconds)

    def record_retry(self, endpoint: str) -> None:
        self.upstream_retries.labels(endpoint).inc()

    def set_circuit_state(self, state: str) -> None:
        self.circuit_state.set(CIRCUIT_STATE_VALUES.get(state, 0))

    def record_cache(self, cache: str, hit: bool) -> None:
        self.cache_events.labels(cache, "hit" if hit else "miss").inc()

    def watch_admission(
        self, in_flight: Callable[[], float], loop_lag: Callable[[], float]
    ) -> None:
        """Read the admission gauges from these functions at each scrape."""
        self.api_in_flight.set_function(in_flight)
        self.event_loop_lag.set_function(loop_lag)

    def render(self) -> bytes:
        return generate_latest(self.registry)
