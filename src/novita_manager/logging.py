"""Structured logging: JSON lines by default, readable console output on request.

Every line passes through `redact`, which masks secret-looking keys (Authorization, API keys,
`imageAuth`, passwords, webhook secrets) at any depth, and scrubs the configured secret values and
`Bearer` tokens out of free text, so a secret cannot leak through an exception message either.
The standard library's loggers (uvicorn, SQLAlchemy, httpx) are routed through the same chain.
"""

from __future__ import annotations

import logging
import re
import sys
import uuid
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

REDACTED = "***"
_SECRET_KEY = re.compile(
    r"(authorization|api[_-]?keys?|apikey|password|passwd|secret|imageauth$|image_auth$|token"
    r"|credential|sshpassword|x-api-key|cookie)",
    re.IGNORECASE,
)
_NOT_SECRET_KEYS = frozenset({"imageauthid", "image_auth_id", "lock_token", "tokens"})
_BEARER = re.compile(r"(Bearer\s+)[^\s\"',]+", re.IGNORECASE)
_WHSEC = re.compile(r"whsec_[A-Za-z0-9+/=]+")
# One search instead of two substitutions on the common text that holds neither.
_MAYBE_SECRET_TEXT = re.compile(r"bearer\s|whsec_", re.IGNORECASE)
_known_secrets: set[str] = set()
_secret_keys: dict[str, bool] = {}  # the answer per key: keys are few, lines are many
_MAX_KEYS = 4096


def register_secrets(values: Iterable[str]) -> None:
    """Remember secret values so that they are scrubbed from any text that is logged."""
    _known_secrets.update(value for value in values if value and len(value) >= 4)


def _is_secret_key(key: str) -> bool:
    known = _secret_keys.get(key)
    if known is None:
        known = key.lower() not in _NOT_SECRET_KEYS and bool(_SECRET_KEY.search(key))
        if len(_secret_keys) < _MAX_KEYS:  # bounded: keys built from data must not grow it
            _secret_keys[key] = known
    return known


def scrub_text(text: str) -> str:
    """Remove bearer tokens, signing secrets and known secret values from free text."""
    if _MAYBE_SECRET_TEXT.search(text):
        text = _BEARER.sub(r"\1" + REDACTED, text)
        text = _WHSEC.sub(REDACTED, text)
    for secret in _known_secrets:
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


def redact_value(value: Any, depth: int = 0) -> Any:
    """Return a copy of `value` with secret keys masked and secret text scrubbed."""
    if depth > 8:
        return value
    if isinstance(value, str):
        return scrub_text(value)
    if isinstance(value, Mapping):
        return {
            key: (
                REDACTED
                if isinstance(key, str) and _is_secret_key(key) and item not in (None, "")
                else redact_value(item, depth + 1)
            )
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        # Header lists such as [(b"authorization", b"Bearer ...")] arrive as pairs.
        return [redact_value(item, depth + 1) for item in value]
    if isinstance(value, bytes):
        return scrub_text(value.decode("utf-8", "replace"))
    return value


def redact(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """structlog processor: the last step before rendering, so nothing bypasses it."""
    redacted: EventDict = {}
    for key, value in event_dict.items():
        if _is_secret_key(key) and value not in (None, ""):
            redacted[key] = REDACTED
        else:
            redacted[key] = redact_value(value)
    return redacted


def _drop_color_message(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    event_dict.pop("color_message", None)
    return event_dict


_SHARED: list[Processor] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
    _drop_color_message,
]


# The last steps of a structlog line, by format (`configure_logging` sets them): the line is
# redacted and rendered in structlog's chain and reaches the standard library finished (marked
# `_RENDERED`), so its handler writes it as is. Through `ProcessorFormatter` each line was
# copied into a second LogRecord and processed there: 67 us an INFO line, two per instance of a
# burst (about 6 % of its CPU).
_RENDERED = "_nm_rendered"
_final: list[Processor] = [
    structlog.processors.format_exc_info,
    redact,
    structlog.processors.JSONRenderer(),
]


def _render_line(
    logger: WrappedLogger, method: str, event_dict: EventDict
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """structlog's last processor: the finished line, as the standard library's message."""
    line: Any = event_dict
    for processor in _final:
        line = processor(logger, method, line)
    return (line,), {"extra": {_RENDERED: True}}


class _LineFormatter(structlog.stdlib.ProcessorFormatter):
    """Writes structlog's lines as rendered; the standard library's own records (uvicorn,
    SQLAlchemy) go through the shared chain, redaction included."""

    def format(self, record: logging.LogRecord) -> str:
        if getattr(record, _RENDERED, False):
            return str(record.msg)
        return super().format(record)


def _configure_structlog() -> None:
    """The structlog side, the same for every configuration (what varies is the standard
    library's handler, level and renderer), so loggers can be cached on first use: a lazy
    logger bound anew at every call cost about a third of a discarded debug line. A level
    below the root's is dropped first (`filter_by_level`), before any processor runs."""
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *_SHARED,
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.processors.StackInfoRenderer(),
            _render_line,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )


def configure_logging(
    level: str = "info",
    fmt: str = "json",
    secrets: Iterable[str] = (),
    stream: TextIO | None = None,
) -> None:
    """Configure structlog and the standard library to write through one redacting chain."""
    register_secrets(secrets)
    _configure_structlog()
    # The records' caller, thread and process fields are never rendered: skip computing them
    # (the logging documentation's "Optimization" section). Here, not at import: they are the
    # standard library's globals, set only by the program that configures logging.
    logging._srcfile = None  # type: ignore[attr-defined]
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    renderer: Processor
    if fmt == "console":
        renderer = structlog.dev.ConsoleRenderer(colors=False)
    else:
        renderer = structlog.processors.JSONRenderer()
    # A traceback becomes text before `redact`, in both formats, so its secrets are scrubbed
    # (the console renderer's own traceback printed every frame's locals, unredacted).
    _final[:] = [structlog.processors.format_exc_info, redact, renderer]
    formatter = _LineFormatter(
        foreign_pre_chain=_SHARED,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *_final],
    )
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
    for noisy in ("httpx", "httpcore", "aiosqlite", "asyncio", "sqlalchemy.engine"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


def get_logger(name: str | None = None) -> structlog.stdlib.BoundLogger:
    return structlog.stdlib.get_logger(name)  # type: ignore[no-any-return]


def new_request_id() -> str:
    return uuid.uuid4().hex


def current_request_id() -> str | None:
    value = structlog.contextvars.get_contextvars().get("request_id")
    return value if isinstance(value, str) else None


@contextmanager
def bound_context(**values: Any) -> Iterator[None]:
    """Bind values (request id, instance id) to every log line inside the block; the values
    bound before it are back after it. Through the tokens `bind_contextvars` returns: structlog's
    `bound_contextvars` copies the whole context first, and a pipeline step binds twice (45 us
    for both, now 21)."""
    tokens = structlog.contextvars.bind_contextvars(
        **{key: value for key, value in values.items() if value is not None}
    )
    try:
        yield
    finally:
        structlog.contextvars.reset_contextvars(**tokens)


_configure_structlog()  # before any logger is first used, so none caches structlog's defaults
