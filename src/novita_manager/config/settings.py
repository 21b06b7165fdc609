"""Every variable of the contract (CONTRACT.md "Configuration") with its type, default and range."""

from __future__ import annotations

from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationInfo, field_validator, model_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from novita_manager.config.addresses import is_loopback_url
from novita_manager.config.events import EventSettings
from novita_manager.config.limits import LimitSettings
from novita_manager.config.spot import SpotSettings
from novita_manager.webhooks.signing import InvalidWebhookSecret, secret_key
from novita_manager.webhooks.ssrf import WebhookUrlRefused, validate_webhook_url

DEFAULT_NOVITA_BASE_URL = "https://api.novita.ai/gpu-instance/openapi"
DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./data/novita-manager.db"
SIMULATOR_API_KEY = "sk_simulator"  # not a secret: the simulator accepts any key

PositiveSeconds = Annotated[float, Field(gt=0, le=86_400)]


class Settings(SpotSettings, EventSettings, LimitSettings):
    """Every configuration variable of the service; field names map to UPPER_CASE variables."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=False,
        validate_default=True,
    )

    # Upstream
    novita_api_base_url: str = Field(
        default=DEFAULT_NOVITA_BASE_URL,
        description="Base URL of the Novita GPU-instance API, without the `/v1` suffix.",
    )
    novita_api_key: SecretStr | None = Field(
        default=None,
        description="Novita API key (`sk_...`). Required unless the base URL is a loopback "
        "address (the built-in simulator).",
    )
    request_timeout: PositiveSeconds = Field(
        default=30.0, description="Timeout of one upstream HTTP call, in seconds."
    )
    max_retry_attempts: int = Field(
        default=3, ge=0, le=10, description="Retries of a failed upstream call (429, 5xx, network)."
    )
    retry_backoff_base: float = Field(
        default=1.0,
        ge=0,
        le=60,
        description="First retry delay (s); doubles per attempt (1 s, 2 s, 4 s), with jitter.",
    )
    max_concurrent_requests: int = Field(
        default=32, ge=1, le=1024, description="Upstream calls in flight at once."
    )
    upstream_rate_limit: float = Field(
        default=0.0,
        ge=0,
        description="Client-side limit on upstream calls per second; 0 turns it off.",
    )
    circuit_failure_threshold: int = Field(
        default=5, ge=1, le=1000, description="Consecutive upstream failures that open the circuit."
    )
    circuit_reset_timeout: PositiveSeconds = Field(
        default=30.0, description="Seconds the circuit stays open before a half-open probe."
    )
    cache_ttl: float = Field(
        default=300.0, ge=0, le=86_400, description="Seconds products and templates are cached."
    )

    # Storage
    database_url: str = Field(
        default=DEFAULT_DATABASE_URL,
        description="`sqlite+aiosqlite:///path.db` (one process) or "
        "`postgresql+asyncpg://user:pass@host/db` (several replicas).",
    )

    # HTTP server
    host: str = Field(default="127.0.0.1", description="Address the service binds to.")
    port: int = Field(default=3000, ge=1, le=65535, description="Port the service listens on.")
    api_keys: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated API keys; when set, `/api/*` needs `Authorization: Bearer`.",
    )

    api_rate_limit: float = Field(
        default=0.0,
        ge=0,
        description="Requests per second each API client (key, else address) may make to /api; "
        "bursts of twice that; 0 turns it off. Over the limit: 429 RATE_LIMITED.",
    )
    auth_failure_limit: int = Field(
        default=20,
        ge=0,
        le=100_000,
        description="Failed authentications per minute one client address may make to /api "
        "(bursts of that many, then one per 60/limit s); beyond it every /api request from "
        "that address, even with a valid key, answers 429 RATE_LIMITED until it cools down; "
        "0 turns it off.",
    )
    max_request_bytes: int = Field(
        default=65_536,
        ge=1,
        le=1 << 30,
        description="Largest request body in bytes; a larger Content-Length, or a streamed body "
        "that grows past it, answers 413 PAYLOAD_TOO_LARGE without reading the rest.",
    )
    http_header_timeout: PositiveSeconds = Field(
        default=10.0,
        description="Seconds a client has to send a complete request head (from the connection "
        "or the first byte of the next request); slower connections are closed.",
    )
    http_keepalive_timeout: PositiveSeconds = Field(
        default=5.0,
        description="Seconds an idle keep-alive connection stays open between requests.",
    )
    http_max_connections: int = Field(
        default=500,
        ge=1,
        le=100_000,
        description="Open client connections at most; a connection beyond it is answered "
        "503 SERVICE_UNAVAILABLE (Retry-After: 1) and closed at once.",
    )
    api_max_in_flight: int = Field(
        default=64,
        ge=0,
        le=100_000,
        description="/api requests (any method) this process serves at once; one more is "
        "answered 503 SERVICE_UNAVAILABLE (Retry-After: 1) at once, before authentication or "
        "its body. The only limit that refuses writes. 0 turns it off. /health and /metrics "
        "are never refused.",
    )
    api_max_reads_in_flight: int = Field(
        default=16,
        ge=0,
        le=100_000,
        description="/api reads (GET, HEAD) this process serves at once; one more is answered "
        "503 SERVICE_UNAVAILABLE (Retry-After: 1) at once. Answered reads wait at most about "
        "this many reads' CPU time, and the background pipelines keep their turns of the "
        "event loop. 0 turns it off.",
    )
    api_max_loop_lag: float = Field(
        default=0.1,
        ge=0,
        le=60,
        description="Seconds the event loop may run late (measured every 50 ms) before new "
        "/api reads are answered 503 SERVICE_UNAVAILABLE (Retry-After: 1), until it keeps time "
        "again; writes are refused only at API_MAX_IN_FLIGHT. 0 turns it off.",
    )

    # Instances
    default_region: str = Field(
        default="CN-HK-01", min_length=1, description="Region used when a request names none."
    )
    instance_poll_interval: PositiveSeconds = Field(
        default=30.0, description="Seconds between status syncs (one account listing each)."
    )
    instance_startup_timeout: PositiveSeconds = Field(
        default=600.0, description="Seconds an instance may take to reach `running`."
    )

    # Background processing
    pipeline_workers: int = Field(
        default=32, ge=1, le=256, description="Concurrent provisioning steps per process."
    )
    pipeline_processes: int = Field(
        default=0,
        ge=0,
        le=16,
        description="Processes of `serve` (role all) for the background work. 0: one on SQLite "
        "(it allows no more), two on PostgreSQL on a machine of two cores or more.",
    )
    lease_seconds: PositiveSeconds = Field(
        default=30.0, description="How long a claimed row stays locked without a heartbeat."
    )
    service_role: Literal["all", "api", "worker"] = Field(
        default="all",
        description="What `serve` runs: `all` (the API and the background work), `api` (the "
        "API only; several processes may share one port with `serve --workers N`) or `worker` "
        "(pipelines, status sync and scheduled tasks, with only /health and /metrics over "
        "HTTP). `api` and `worker` need PostgreSQL. `serve --role` overrides it.",
    )

    # Webhooks
    webhook_url: str | None = Field(
        default=None, description="Webhook URL used when a request gives none."
    )
    webhook_secret: SecretStr | None = Field(
        default=None,
        description="Standard Webhooks signing secret (`whsec_<base64>` or any string).",
    )
    webhook_timeout: PositiveSeconds = Field(
        default=10.0, description="Timeout of one webhook delivery attempt, in seconds."
    )
    webhook_max_retries: int = Field(
        default=3, ge=0, le=20, description="Retries after a failed webhook delivery attempt."
    )
    webhook_retry_base: float = Field(
        default=1.0, ge=0, le=3600, description="First webhook retry delay in seconds; doubles."
    )
    webhook_allow_private: bool = Field(
        default=False,
        description="Allow webhooks to loopback and private addresses (tests, trusted networks).",
    )
    webhook_max_in_flight: int = Field(
        default=256,
        ge=1,
        le=2048,
        description="Webhook attempts sent at once by one process, over all destinations.",
    )
    webhook_max_in_flight_per_host: int = Field(
        default=32,  # 4, then 16, held a burst to one receiver back (docs/design.md)
        ge=1,
        le=256,
        description="Webhook attempts sent at once to one destination (host and port).",
    )
    webhook_breaker_threshold: int = Field(
        default=5,
        ge=1,
        le=1000,
        description="Consecutive failed attempts after which a destination's breaker opens.",
    )
    webhook_breaker_cooldown: PositiveSeconds = Field(
        default=30.0,
        description="Seconds a destination's breaker stays open before one probe; doubles "
        "after each failed probe, up to 16 times.",
    )
    webhook_max_pending_age: PositiveSeconds = Field(
        default=300.0,
        description="/health is degraded when a pending webhook delivery is older than this.",
    )

    # Logging
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        default="info", description="Minimum level of log lines."
    )
    log_format: Literal["json", "console"] = Field(
        default="json", description="`json` lines, or readable `console` output."
    )

    @field_validator("log_level", "log_format", "service_role", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value

    @field_validator("api_keys", mode="before")
    @classmethod
    def _split_keys(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("novita_api_key", "webhook_secret", mode="before")
    @classmethod
    def _empty_is_absent(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("webhook_url", mode="before")
    @classmethod
    def _check_webhook_url(cls, value: object) -> object:
        if value in ("", None):
            return None
        if isinstance(value, str):
            parts = urlsplit(value)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError("must be an http:// or https:// URL with a host")
        return value

    @field_validator("webhook_secret")
    @classmethod
    def _check_webhook_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            try:
                secret_key(value.get_secret_value())
            except InvalidWebhookSecret as error:
                raise ValueError(str(error)) from None
        return value

    @model_validator(mode="after")
    def _check_default_webhook_target(self) -> Settings:
        """The default webhook URL obeys the same SSRF policy as one given in a request."""
        if self.webhook_url is not None:
            try:
                validate_webhook_url(self.webhook_url, self.webhook_allow_private)
            except WebhookUrlRefused as refused:
                raise ValueError(
                    f"WEBHOOK_URL: refused ({refused}); set WEBHOOK_ALLOW_PRIVATE=true to allow it"
                ) from None
        return self

    @model_validator(mode="after")
    def _check_role_database(self) -> Settings:
        """SQLite is one process (store/locking.py): the API and the worker cannot be split."""
        if self.uses_sqlite and (self.service_role != "all" or self.pipeline_processes > 1):
            what = "SERVICE_ROLE" if self.service_role != "all" else "PIPELINE_PROCESSES"
            raise ValueError(
                f"{what}={getattr(self, what.lower())} needs PostgreSQL (a postgresql+asyncpg "
                "DATABASE_URL); SQLite allows one process per database file, which runs the "
                "background work (role all)"
            )
        return self

    @field_validator("novita_api_base_url")
    @classmethod
    def _check_base_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http:// or https:// URL with a host")
        return value.rstrip("/")

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str) -> str:
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError(
                "must start with sqlite+aiosqlite:// or postgresql+asyncpg:// "
                f"(got scheme {value.split(':', 1)[0]!r})"
            )
        return value

    @field_validator("novita_api_key")
    @classmethod
    def _require_real_key(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        base_url = info.data.get("novita_api_base_url")
        if value is None and base_url is not None and not is_loopback_url(base_url):
            raise ValueError("required when NOVITA_API_BASE_URL is not the local simulator")
        return value

    @property
    def novita_key(self) -> str:
        """The key to send upstream; the simulator accepts any non-empty key."""
        key = self.novita_api_key
        return SIMULATOR_API_KEY if key is None else key.get_secret_value()

    @property
    def uses_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def secret_values(self) -> list[str]:
        """Every configured secret, so the log redactor can scrub them wherever they appear."""
        values = [key.get_secret_value() for key in self.api_keys]
        for secret in (self.novita_api_key, self.webhook_secret):
            if secret is not None:
                values.append(secret.get_secret_value())
        return [value for value in values if len(value) >= 4]
