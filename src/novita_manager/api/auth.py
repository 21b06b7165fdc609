"""API-key authentication for /api, before anything reads the request body (plain ASGI).

Order of the checks on an /api request (see `app.create_app` for the middleware stack):

1. The failed-authentication limit of the client address (AUTH_FAILURE_LIMIT per minute): once an
   address has used it up, every /api request from it answers 429 RATE_LIMITED with Retry-After,
   even one with a valid key, until a token refills. Blocking only further failures would let a
   key guesser tell a right guess (200) from a wrong one (429), which is what the limit prevents.
2. The key: `Authorization: Bearer <key>` compared in constant time (SHA-256 digests, every
   configured key compared) with API_KEYS. A missing or wrong key answers 401 UNAUTHORIZED with
   `WWW-Authenticate: Bearer` and counts as a failure of the address.
3. The client's identity is stored in the scope for the rate limit: a hash of the matched
   configured key (never the raw header), or the client address when no keys are configured.

The body is never read here; a refused request that announced one gets `Connection: close`, so
the server does not keep reading (and discarding) what the client is still sending.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence

from starlette.types import ASGIApp, Receive, Scope, Send

from novita_manager.api.errors import error_response
from novita_manager.errors import ApiError, RateLimited, Unauthorized

CLIENT_SCOPE_KEY = "novita_manager.client"  # the authenticated client id, set for /api requests
MAX_ADDRESSES = 10_000  # oldest failure records are forgotten beyond this
WWW_AUTHENTICATE = {"WWW-Authenticate": "Bearer"}


def is_api_path(path: str) -> bool:
    return path == "/api" or path.startswith("/api/")


def client_address(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


def header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return bytes(value)
    return None


def has_body(scope: Scope) -> bool:
    """True when the request announced a body (a non-zero Content-Length, or chunked)."""
    if header(scope, b"transfer-encoding") is not None:
        return True
    length = header(scope, b"content-length")
    return length is not None and length.strip() not in (b"", b"0")


async def refuse(scope: Scope, receive: Receive, send: Send, error: ApiError) -> None:
    """Answer with the error's envelope; close the connection if a body is on its way."""
    headers = dict(error.headers)
    if has_body(scope):
        headers["Connection"] = "close"
    response = error_response(error.status_code, error.code, error.message, error.details, headers)
    await response(scope, receive, send)


class FailureLimiter:
    """Per address token buckets: `per_minute` failures in a burst, then one per 60/limit s."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # tokens, updated

    def _tokens(self, address: str) -> float:
        entry = self._buckets.get(address)
        if entry is None:
            return self.capacity
        tokens, updated = entry
        return min(self.capacity, tokens + (self._clock() - updated) * self.rate)

    def retry_after(self, address: str) -> float:
        """0.0 while the address may still fail, else the seconds until it may again."""
        if self.capacity <= 0:
            return 0.0
        tokens = self._tokens(address)
        if tokens >= 1:
            if tokens >= self.capacity:
                self._buckets.pop(address, None)  # cooled down completely: forget it
            return 0.0
        return (1 - tokens) / self.rate

    def record_failure(self, address: str) -> None:
        if self.capacity <= 0:
            return
        tokens = max(0.0, self._tokens(address) - 1)
        self._buckets.pop(address, None)
        self._buckets[address] = (tokens, self._clock())
        if len(self._buckets) > MAX_ADDRESSES:
            self._buckets.popitem(last=False)


def key_id(digest: bytes) -> str:
    """The rate-limit identity of a configured key: a hash of it, never the key itself."""
    return "key:" + hashlib.sha256(b"novita-manager-client:" + digest).hexdigest()[:32]


class AuthMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        api_keys: Sequence[str],
        failure_limit: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.app = app
        self._digests = [hashlib.sha256(key.encode()).digest() for key in api_keys]
        self._ids = [key_id(digest) for digest in self._digests]
        self.failures = FailureLimiter(failure_limit, clock)

    def authenticate(self, scope: Scope) -> str:
        """The client id of the matched key; raise Unauthorized when none matches."""
        raw = header(scope, b"authorization")
        scheme, _, token = (raw or b"").decode("latin-1").strip().partition(" ")
        if "\t" in scheme:  # `Bearer<TAB>key`: not RFC 7235, but unambiguous
            scheme, _, token = scheme.partition("\t")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized(
                "Missing API key: send Authorization: Bearer <key>", headers=WWW_AUTHENTICATE
            )
        presented = hashlib.sha256(token.strip().encode("latin-1")).digest()
        matched: str | None = None
        for digest, client_id in zip(self._digests, self._ids, strict=True):
            if hmac.compare_digest(presented, digest):  # every key compared: no early exit
                matched = client_id
        if matched is None:
            raise Unauthorized("Invalid API key", headers=WWW_AUTHENTICATE)
        return matched

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not is_api_path(scope["path"]):
            await self.app(scope, receive, send)
            return
        address = client_address(scope)
        if not self._digests:
            scope[CLIENT_SCOPE_KEY] = f"addr:{address}"
            await self.app(scope, receive, send)
            return
        wait = self.failures.retry_after(address)
        if wait > 0:
            error = RateLimited(
                "Too many failed authentications from this address; "
                f"retry in {wait:.1f} s with a valid key",
                headers={"Retry-After": str(max(1, math.ceil(wait)))},
            )
            await refuse(scope, receive, send, error)
            return
        try:
            scope[CLIENT_SCOPE_KEY] = self.authenticate(scope)
        except Unauthorized as error:
            self.failures.record_failure(address)
            await refuse(scope, receive, send, error)
            return
        await self.app(scope, receive, send)
