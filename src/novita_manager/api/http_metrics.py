"""ASGI middleware that counts HTTP requests and their latency for /metrics.

Labelled by method, route template (`/api/instances/{instance_id}`, not the raw path, so ids and
scanners cannot explode the label set; unmatched paths share `unmatched`) and status code. Plain
ASGI, outermost, so that the 500 the request-context middleware makes of a crash is counted too.
The registry is the runtime's, found through `scope["app"]` once the lifespan has opened it.
"""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

UNMATCHED = "unmatched"


def route_template(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else UNMATCHED


class HttpMetricsMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            runtime = getattr(getattr(scope.get("app"), "state", None), "runtime", None)
            if runtime is not None:
                route = route_template(scope)
                method = str(scope["method"])
                runtime.metrics.http_requests.labels(method, route, str(status)).inc()
                runtime.metrics.http_latency.labels(method, route).observe(
                    time.perf_counter() - started
                )
