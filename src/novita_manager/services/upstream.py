"""The service's settings mapped onto the Novita client's own options.

The `novita` package does not import `novita_manager.config` (the settings module imports the
webhooks package, and the upstream client must not depend on it), so the one place that knows
which setting feeds which client option is here, next to the other use cases.
"""

from __future__ import annotations

from novita_manager.config import Settings
from novita_manager.metrics import Metrics
from novita_manager.novita.client import NovitaClient
from novita_manager.novita.options import ClientOptions


def client_options(settings: Settings) -> ClientOptions:
    return ClientOptions(
        base_url=settings.novita_api_base_url,
        api_key=settings.novita_key,
        timeout=settings.request_timeout,
        max_retries=settings.max_retry_attempts,
        backoff_base=settings.retry_backoff_base,
        max_concurrency=settings.max_concurrent_requests,
        rate_limit=settings.upstream_rate_limit,
        circuit_failure_threshold=settings.circuit_failure_threshold,
        circuit_reset_timeout=settings.circuit_reset_timeout,
    )


def novita_client(settings: Settings, metrics: Metrics | None = None) -> NovitaClient:
    """The service's client: every figure from the settings, calls counted in `metrics`."""
    return NovitaClient.from_options(client_options(settings), metrics)
