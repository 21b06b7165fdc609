"""A small circuit breaker for the upstream, readable by /health and metrics.

Kept by hand (about 80 lines) after weighing purgatory 3.0 and aiobreaker 1.2, because neither
has the semantics the service and its tests pin:
- Exactly one probe in half-open. Both libraries let every call through while half-open, so after
  an outage the whole backlog would hit a Novita that may still be down; here `before_call`
  admits one probe and fails the rest fast, and a probe that is cancelled (`release`) or never
  reports back frees the slot within `reset_timeout`.
- The state read synchronously, with time applied: /health and the circuit gauge read `state`
  (closed / open / half_open) and `consecutive_failures` without I/O, and an open breaker reads
  half_open once `reset_timeout` has passed. purgatory keeps its state behind an async
  repository (`await factory.get_breaker(name)`) and only moves to half-open on the next call;
  aiobreaker also moves only on a call.
- The client's own errors. A tripping failure must still raise the NovitaServerError or
  NovitaTransportError that caused it (aiobreaker raises its CircuitBreakerError instead), and
  fail-fast raises NovitaUnavailable with `retry_after` = the time left, which the API and the
  engine understand (the libraries raise their own OpenedState / CircuitBreakerError).
- Failures are verdicts, not exceptions: only 5xx, timeouts and connection errors count (never
  4xx or 429, which prove the upstream is answering), decided from the reply before it is
  parsed; and an injectable monotonic clock (both libraries read the wall clock) so the tests
  drive transitions without sleeping.
Single event loop, so no locks are needed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Literal

from novita_manager.novita.errors import NovitaUnavailable

CircuitState = Literal["closed", "open", "half_open"]
Listener = Callable[[CircuitState], None]


class CircuitBreaker:
    """closed → (N failures in a row) → open → (reset_timeout) → half_open → probe → closed/open."""

    def __init__(
        self,
        failure_threshold: int,
        reset_timeout: float,
        clock: Callable[[], float] = time.monotonic,
        on_change: Listener | None = None,
    ) -> None:
        if failure_threshold < 1:
            raise ValueError("failure_threshold must be at least 1")
        self.failure_threshold = failure_threshold
        self.reset_timeout = reset_timeout
        self._clock = clock
        self._listeners: list[Listener] = [on_change] if on_change else []
        self._state: CircuitState = "closed"
        self._failures = 0
        self._opened_at = 0.0
        self._probe_started: float | None = None

    def add_listener(self, listener: Listener) -> None:
        """Call `listener(new_state)` on every transition (metrics, logs)."""
        self._listeners.append(listener)

    @property
    def state(self) -> CircuitState:
        if self._state == "open" and self._clock() - self._opened_at >= self.reset_timeout:
            self._set("half_open")
        return self._state

    @property
    def consecutive_failures(self) -> int:
        return self._failures

    def before_call(self) -> None:
        """Raise NovitaUnavailable while open; in half-open admit one probe at a time.

        A probe that never reports back (cancelled) blocks others for at most reset_timeout.
        """
        state = self.state
        if state == "closed":
            return
        now = self._clock()
        if state == "open":
            remaining = self.reset_timeout - (now - self._opened_at)
            raise NovitaUnavailable(
                "Novita API circuit is open after repeated failures; failing fast",
                retry_after=max(remaining, 0.0),
            )
        if self._probe_started is not None and now - self._probe_started < self.reset_timeout:
            raise NovitaUnavailable(
                "Novita API circuit is half-open and a probe is in flight; failing fast",
                retry_after=self.reset_timeout - (now - self._probe_started),
            )
        self._probe_started = now

    def record_success(self) -> None:
        """The upstream answered (any reply below 500)."""
        self._failures = 0
        self._probe_started = None
        if self._state != "closed":
            self._set("closed")

    def record_failure(self) -> None:
        """A 5xx, timeout or connection error."""
        self._probe_started = None
        if self._state == "half_open":
            self._open()
            return
        self._failures += 1
        if self._state == "closed" and self._failures >= self.failure_threshold:
            self._open()

    def release(self) -> None:
        """A call admitted by `before_call` ended without a verdict (e.g. cancelled)."""
        self._probe_started = None

    def _open(self) -> None:
        self._opened_at = self._clock()
        self._set("open")

    def _set(self, state: CircuitState) -> None:
        if state == self._state:
            return
        self._state = state
        for listener in self._listeners:
            listener(state)
