"""Answers the HTTP protocol writes itself (http_server.py), without an ASGI request cycle.

`raw_error_response` for the connection limits (431, 503 at the connection cap) and
`refusal_answer` for the reads admission refuses as soon as their head is parsed. A refusal is
built from fixed parts (no request context, no JSON encoder's general path, no random bytes
from the kernel for its request id): under reads offered at twice the capacity most requests
are refused, and what a refusal costs is taken from what is left of the process for the rest.
Measured with wrk on a server whose admission refuses every read: 69-91 us of CPU per refusal
through the general path, 25-31 us so, against 44-46 us for an empty ASGI answer
(docs/operations.md "Overload").
"""

from __future__ import annotations

import itertools
import json
import os
from datetime import UTC, datetime

import orjson

from novita_manager.api.admission import Admission
from novita_manager.api.errors import error_body
from novita_manager.errors import ApiError, ServiceUnavailable
from novita_manager.logging import bound_context, new_request_id


def raw_error_response(
    status: int,
    reason: str,
    error: ApiError,
    *,
    request_id: str | None = None,
    keep_alive: bool = False,
) -> bytes:
    """A complete HTTP/1.1 error answer in the contract's envelope, ending the connection unless
    `keep_alive`."""
    request_id = request_id or new_request_id()
    with bound_context(request_id=request_id):
        body = json.dumps(error_body(error.code, error.message, error.details)).encode()
    lines = [
        f"HTTP/1.1 {status} {reason}",
        "content-type: application/json",
        f"content-length: {len(body)}",
        "connection: keep-alive" if keep_alive else "connection: close",
        f"x-request-id: {request_id}",
        *(f"{name}: {value}" for name, value in error.headers.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


REFUSED_HEAD = (
    b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: "
)


class RefusalIds:
    """Request ids for refused requests: this process's random 16 hex digits and a counter (32
    hex digits, as `new_request_id`), so that a refusal needs no random bytes from the kernel.
    A forked child starts its own prefix (os.register_at_fork)."""

    def __init__(self) -> None:
        self._reset()
        os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        self.prefix = new_request_id()[:16]
        self.counter = itertools.count()

    def next(self) -> str:
        return f"{self.prefix}{next(self.counter):016x}"


REFUSAL_IDS = RefusalIds()


def refusal_answer(
    admission: Admission, reason: str, request_id: str | None, keep_alive: bool
) -> bytes:
    """`raw_error_response` of a refusal (503 SERVICE_UNAVAILABLE, Retry-After: 1) for the
    protocol, built without the general path's request context and JSON encoder: under
    overload most requests are refused, and what they cost is taken from what the process has
    left for the rest (docs/operations.md "Overload")."""
    admission.count(reason)
    request_id = request_id or REFUSAL_IDS.next()
    body = orjson.dumps(
        {
            "error": {
                "code": ServiceUnavailable.code,
                "message": admission.message(reason),
                "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
                "requestId": request_id,
                "details": {"reason": reason},
            }
        }
    )
    return b"".join(
        (
            REFUSED_HEAD,
            str(len(body)).encode(),
            b"\r\nconnection: keep-alive" if keep_alive else b"\r\nconnection: close",
            b"\r\nx-request-id: ",
            request_id.encode("latin-1"),
            b"\r\nretry-after: 1\r\n\r\n",
            body,
        )
    )
