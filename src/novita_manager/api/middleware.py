"""Request id binding, access logging, HTTP metrics and the last-resort 500 handler, as one
ASGI middleware.

It is plain ASGI (not BaseHTTPMiddleware) so that the request id stays bound in the context that
the route and the work it starts run in, and so that an unexpected exception becomes the contract's
500 envelope here, with the full trace in the log and none in the body (and counted as a 500).
Metrics are labelled by route template (`/api/instances/{instanceId}`), not the raw path, so ids
and scanners cannot explode the label set; unmatched paths share `unmatched`.
"""

from __future__ import annotations

import re
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from novita_manager.api.errors import internal_error_response
from novita_manager.logging import bound_context, get_logger, new_request_id

log = get_logger("novita_manager.http")
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
UNMATCHED = "unmatched"


def route_template(scope: Scope) -> str:
    path = getattr(scope.get("route"), "path", None)
    return path if isinstance(path, str) else UNMATCHED


def record_metrics(scope: Scope, status: int, seconds: float) -> None:
    """Count the request in the runtime's registry (present once the lifespan opened it)."""
    runtime = getattr(getattr(scope.get("app"), "state", None), "runtime", None)
    if runtime is None:
        return
    route, method = route_template(scope), str(scope["method"])
    runtime.metrics.http_requests.labels(method, route, str(status)).inc()
    runtime.metrics.http_latency.labels(method, route).observe(seconds)


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = ""
        for name, value in scope.get("headers", ()):
            if name == b"x-request-id":
                given = value.decode("latin-1")
                break
        request_id = given if _VALID_REQUEST_ID.match(given) else new_request_id()
        started = time.perf_counter()
        status = 500
        response_started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = message["status"]
                headers = [(k, v) for k, v in message.get("headers", []) if k != b"x-request-id"]
                headers.append((b"x-request-id", request_id.encode("latin-1")))
                message["headers"] = headers
            await send(message)

        with bound_context(request_id=request_id):
            try:
                await self.app(scope, receive, send_with_id)
            except Exception:
                log.exception("unhandled_error", method=scope["method"], path=scope["path"])
                if not response_started:
                    await internal_error_response()(scope, receive, send_with_id)
            finally:
                seconds = time.perf_counter() - started
                record_metrics(scope, status, seconds)
                path = scope["path"]
                if not path.startswith(("/health", "/metrics")):
                    log.info(
                        "http_request",
                        method=scope["method"],
                        path=path,
                        status=status,
                        duration_ms=round(seconds * 1000, 2),
                    )
