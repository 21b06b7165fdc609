"""Fault injection: which calls fail, how, and how often; plus per-endpoint call counts.

A fault matches an endpoint key such as `POST /gpu/instance/create` (method + path relative to
`/v1`), a bare path (any method) or `*`. For each call the faults are tried in list order and
the first one that applies wins: a fault with `times` applies to its next N matching calls (so
several `times` faults on one endpoint form a scripted sequence), one with `rate` applies with
that probability (drawn from the seeded RNG), one with neither applies to every matching call.
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import asdict, dataclass
from typing import Any, Literal

from novita_manager.simulator.errors import SimulatorError, invalid_param

FaultKind = Literal["error", "rate_limit", "delay", "hang", "drop", "malformed", "commit_then_fail"]
KINDS: tuple[str, ...] = FaultKind.__args__  # type: ignore[attr-defined]
THEN_KINDS = ("error", "hang", "drop")

ERROR_REASONS = {
    400: "REQUEST",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "RESOURCE_NOT_FOUND",
    429: "RATE_LIMIT_EXCEEDED",
    500: "UNKNOWN",
    502: "BAD_GATEWAY",
    503: "SERVICE_UNAVAILABLE",
    504: "GATEWAY_TIMEOUT",
}


@dataclass
class Fault:
    endpoint: str
    kind: str
    status: int = 500
    retry_after: float = 1.0
    seconds: float = 0.0
    then: str = "error"
    rate: float | None = None
    times: int | None = None  # remaining applications; None: unlimited
    reason: str | None = None
    message: str | None = None

    @classmethod
    def parse(cls, raw: Any) -> Fault:
        if not isinstance(raw, dict):
            raise invalid_param("faults", "each fault must be an object")
        kind = raw.get("kind")
        if kind not in KINDS:
            raise invalid_param("kind", f"must be one of {', '.join(KINDS)}")
        endpoint = raw.get("endpoint", "*")
        if not isinstance(endpoint, str) or not endpoint:
            raise invalid_param("endpoint", "must be 'METHOD /path' or '*'")
        then = raw.get("then", "error")
        if then not in THEN_KINDS:
            raise invalid_param("then", "must be error, hang or drop")
        rate = raw.get("rate")
        if rate is not None and not (isinstance(rate, int | float) and 0 <= rate <= 1):
            raise invalid_param("rate", "must be a number in 0..1")
        times = raw.get("times")
        if times is not None and (not isinstance(times, int) or times < 0):
            raise invalid_param("times", "must be a non-negative integer")
        status = raw.get("status", 500)
        if not isinstance(status, int) or not 100 <= status <= 599:
            raise invalid_param("status", "must be an HTTP status code")
        return cls(
            endpoint=normalise_endpoint(endpoint),
            kind=kind,
            status=status,
            retry_after=float(raw.get("retryAfter", 1)),
            seconds=float(raw.get("seconds", 0)),
            then=then,
            rate=None if rate is None else float(rate),
            times=times,
            reason=raw.get("reason"),
            message=raw.get("message"),
        )

    def matches(self, method: str, path: str) -> bool:
        if self.endpoint == "*":
            return True
        if self.endpoint.startswith("/"):
            return self.endpoint == path
        return self.endpoint == f"{method} {path}"

    def error(self) -> SimulatorError:
        """The error answer of an `error` fault (or of `commit_then_fail` with then=error)."""
        reason = self.reason or ERROR_REASONS.get(self.status, "UNKNOWN")
        message = self.message or f"simulated {self.status} fault"
        return SimulatorError(self.status, reason, message, {"simulatedFault": True})

    def to_json(self) -> dict[str, Any]:
        body = asdict(self)
        body["retryAfter"] = body.pop("retry_after")
        return body


def normalise_endpoint(endpoint: str) -> str:
    """`post  gpu/instance/create/` → `POST /gpu/instance/create`."""
    endpoint = endpoint.strip()
    if endpoint == "*":
        return endpoint
    method, _, path = endpoint.partition(" ")
    if not path:
        method, path = "", method
    path = "/" + path.strip().strip("/")
    return f"{method.upper()} {path}" if method else path


class FaultBook:
    """The active faults and the seeded RNG that decides `rate` faults."""

    def __init__(self, seed: int) -> None:
        self.faults: list[Fault] = []
        self.rng = random.Random(f"faults:{seed}")

    def reset(self, seed: int) -> None:
        self.faults.clear()
        self.rng = random.Random(f"faults:{seed}")

    def set(self, faults: list[Fault], *, replace: bool = True) -> None:
        if replace:
            self.faults = list(faults)
        else:
            self.faults.extend(faults)

    def pick(self, method: str, path: str) -> Fault | None:
        """The fault to apply to this call, consuming one of its `times`; None: answer normally."""
        for fault in self.faults:
            if not fault.matches(method, path):
                continue
            if fault.times is not None and fault.times <= 0:
                continue
            if fault.rate is not None and self.rng.random() >= fault.rate:
                continue
            if fault.times is not None:
                fault.times -= 1
            return fault
        return None

    def to_json(self) -> dict[str, Any]:
        return {"faults": [fault.to_json() for fault in self.faults]}


class CallStats:
    """Calls that reached the v1 surface, by endpoint key and outcome: the status, drop or
    hang, or client_gone when the caller hung up before its body arrived."""

    def __init__(self) -> None:
        self.calls: defaultdict[str, defaultdict[str, int]] = defaultdict(lambda: defaultdict(int))

    def record(self, endpoint: str, outcome: str) -> None:
        self.calls[endpoint][outcome] += 1

    def reset(self) -> None:
        self.calls.clear()

    def to_json(self) -> dict[str, dict[str, int]]:
        return {endpoint: dict(outcomes) for endpoint, outcomes in self.calls.items()}
