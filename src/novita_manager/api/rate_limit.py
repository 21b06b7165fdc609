"""Optional per-client rate limit on /api (API_RATE_LIMIT): 429 RATE_LIMITED with Retry-After.

A client is its API key (hashed, never stored in clear) or, without one, its address. Buckets live
in this process; with several replicas each enforces its own share.
"""

from __future__ import annotations

import hashlib
import math
from collections import OrderedDict

from starlette.types import ASGIApp, Receive, Scope, Send

from novita_manager.api.errors import error_response
from novita_manager.errors import RateLimited
from novita_manager.novita.ratelimit import TokenBucket

MAX_CLIENTS = 10_000  # oldest buckets are forgotten beyond this


def client_key(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            return "key:" + hashlib.sha256(value).hexdigest()[:32]
    client = scope.get("client")
    return f"addr:{client[0] if client else 'unknown'}"


class RateLimitMiddleware:
    def __init__(self, app: ASGIApp, rate: float) -> None:
        self.app = app
        self.rate = rate
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()

    def _bucket(self, key: str) -> TokenBucket:
        bucket = self._buckets.pop(key, None)
        if bucket is None:
            bucket = TokenBucket(self.rate, burst=max(1.0, 2 * self.rate))
        self._buckets[key] = bucket
        if len(self._buckets) > MAX_CLIENTS:
            self._buckets.popitem(last=False)
        return bucket

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.rate <= 0 or scope["type"] != "http" or not scope["path"].startswith("/api/"):
            await self.app(scope, receive, send)
            return
        wait = self._bucket(client_key(scope)).try_acquire()
        if wait == 0.0:
            await self.app(scope, receive, send)
            return
        response = error_response(
            RateLimited.status_code,
            RateLimited.code,
            f"Too many requests: at most {self.rate:g} per second; retry in {wait:.2f} s",
            headers={"Retry-After": str(max(1, math.ceil(wait)))},
        )
        await response(scope, receive, send)
