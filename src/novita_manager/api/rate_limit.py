"""Optional per-client rate limit on /api (API_RATE_LIMIT): 429 RATE_LIMITED with Retry-After.

A client is the configured API key it authenticated with (`api.auth` stores a hash of the matched
key in the scope, never the raw header, so varying the header cannot open new buckets) or, when no
keys are configured, its address. It runs after authentication: failed attempts are limited by
AUTH_FAILURE_LIMIT instead. Buckets live in this process; with several replicas each enforces its
own share.

The bucket is written here by hand (twenty lines) after weighing `limits` (5.x, `limits.aio` with
memory storage), the library made for this hit-or-refuse shape, because it cannot express the
setting without changing it: API_RATE_LIMIT is a float per second with bursts of twice that
(0.3/s, 1.25/s are valid), while a `limits` item is a whole number of hits per whole number of
seconds; and its windows refill differently (10/s as "20 per 2 s" refuses everything for up to two
seconds after a burst, where a bucket admits one more every 0.1 s). Its memory storage also reads
the wall clock and, after each hit, sweeps every key with a thread hop per key. `aiolimiter`, used
for the upstream pacing, waits for capacity but does not say when a refused caller may retry, which
Retry-After needs.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict

from starlette.types import ASGIApp, Receive, Scope, Send

from novita_manager.api.auth import CLIENT_SCOPE_KEY, client_address
from novita_manager.api.errors import error_response
from novita_manager.errors import RateLimited

MAX_CLIENTS = 10_000  # oldest buckets are forgotten beyond this


class TokenBucket:
    """`rate` tokens per second, at most `burst` saved up; starts full."""

    def __init__(self, rate: float, burst: float) -> None:
        self.rate = rate
        self.burst = burst
        self._tokens = burst
        self._updated = time.monotonic()

    def try_acquire(self) -> float:
        """Take a token if one is free (0.0), else say how many seconds until one is."""
        now = time.monotonic()
        self._tokens = min(self.burst, self._tokens + (now - self._updated) * self.rate)
        self._updated = now
        if self._tokens >= 1:
            self._tokens -= 1
            return 0.0
        return (1 - self._tokens) / self.rate


def client_key(scope: Scope) -> str:
    """The id the authentication middleware stored, else the client address."""
    client = scope.get(CLIENT_SCOPE_KEY)
    return client if isinstance(client, str) else f"addr:{client_address(scope)}"


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
