"""The client's own figures: where Novita is, the key, and how hard to try.

This dataclass exists so that the `novita` package needs nothing from `novita_manager.config`:
the settings module also imports the webhooks package, and a client that read `Settings` itself
would make the upstream layer depend on webhooks. The service maps its settings onto these
options in `services/upstream.py`; the doctor and the tests fill them in directly.
"""

from __future__ import annotations

from dataclasses import dataclass, field

DEFAULT_TIMEOUT = 30.0  # seconds per HTTP attempt
DEFAULT_MAX_RETRIES = 3
DEFAULT_BACKOFF_BASE = 1.0  # first retry delay in seconds; doubles per attempt
DEFAULT_MAX_CONCURRENCY = 32
DEFAULT_FAILURE_THRESHOLD = 5  # consecutive failures that open the circuit
DEFAULT_RESET_TIMEOUT = 30.0  # seconds the circuit stays open before one probe


@dataclass(frozen=True)
class ClientOptions:
    """Everything `NovitaClient.from_options` needs; the defaults are the client's own."""

    base_url: str
    api_key: str = field(repr=False)  # never in a repr, a log line or a traceback
    timeout: float = DEFAULT_TIMEOUT
    max_retries: int = DEFAULT_MAX_RETRIES
    backoff_base: float = DEFAULT_BACKOFF_BASE
    max_concurrency: int = DEFAULT_MAX_CONCURRENCY
    rate_limit: float = 0.0  # upstream calls per second; 0 turns the limit off
    circuit_failure_threshold: int = DEFAULT_FAILURE_THRESHOLD
    circuit_reset_timeout: float = DEFAULT_RESET_TIMEOUT
