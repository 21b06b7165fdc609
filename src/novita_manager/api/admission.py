"""Admission control: under overload, refuse /api requests early instead of queueing them.

Reads and the background pipelines share one event loop when one process does everything (the
in-process app of the tests; `serve` runs the pipelines in a child process, see
cli/pipeline_worker.py, and then these limits keep the API's own latency and its writes). Without
a limit, reads offered faster than the process can serve pile up as tasks, every await of
everything else waits behind them, and the latency of everything grows without bound. The HTTP
protocol asks `Admission.refusal` as soon as a request head is parsed (http_server.py: a refused
read costs no ASGI task); this middleware asks again first thing in the app, before the request
id, authentication and the body, for what reaches it. Either answers `503 SERVICE_UNAVAILABLE`
with `Retry-After: 1` (the contract's envelope; nothing was done, a retry is safe) when:

- `API_MAX_IN_FLIGHT` /api requests are already being served by this process (any method);
- `API_MAX_READS_IN_FLIGHT` reads (GET, HEAD, OPTIONS) are in flight (each request is many short
  steps that take turns on the loop, so what an admitted read waits for is the CPU of the reads
  ahead of it (16 reads of ~2.5 ms: ~40 ms), and each pipeline step waits at most one round of
  them per await. Measured: with 64 in flight the answered reads' p99 was ~450 ms at twice the
  capacity; with 16, ~120 ms; the throughput did not drop: docs/operations.md "Overload"); or
- the event loop is late by more than `API_MAX_LOOP_LAG` (reads only). A small task
  (`LoopLagMonitor`) sleeps 50 ms at a time and records how much later than asked it woke; the
  lag is the lesser of its last two measurements or, if larger, how overdue its wake-up is now.
  This catches what the count does not: requests whose steps are long (large listings) or
  anything else holding the loop, so the pipelines sharing the loop keep their share of it.

When this process also runs the pipelines (role `all` in one process: the tests' in-process
app, embedding), reads get a quarter of both their cap and the lag budget while a write is in
flight (`WRITES_FIRST`): a create's awaits wait for the loop like everything else, and under
read overload the creates (which carry the lifecycles) took seconds each. The API process of
`serve` (role `api`: the pipelines run in their own process) does so only while reads crowd it:
a read refused with their whole share within the last `CROWDED_FOR` seconds, or its CPU over
the last 0.5 s at `SATURATED` of a core or more. (Half their cap in flight no longer counts:
with reads counted when the protocol admits them, a moment without CPU on a shared machine puts
that many in flight at 300/s; it held writes-first during 1,000 lifecycles and refused 1,139 of
5,188 reads, against 325 without it and 456 with the code before; docs/benchmarks.md
"Lifecycle".) Under
read overload its creates, which carry the lifecycles, still go first (reads are being refused;
on a shared machine the process may get less than a core, so its CPU alone does not show it).
A process serving reads at a rate it keeps up with (a few in flight) keeps them: with writes
always first, the quartered lag budget (25 ms) refused a third of the reads at 300/s during
1,000 lifecycles while the API process used a quarter of a core (docs/benchmarks.md
"Lifecycle"; on a shared machine the loop runs late because other processes hold the cores,
which refusing reads does not help).

What decides the creates' speed under read overload (measured in serve's API process, issue 15,
docs/operations.md "Overload"): the turns of its loop. A create waits for whole turns (each
turn runs every read the turn admitted), not for CPU, so three things keep the turns short and
few: a request the protocol admits is counted in flight at once (`admit`; counted when its task
first ran, every read parsed in one turn saw the same count, and past the cap dozens were
admitted per turn), so the caps bound the reads per turn; a refusal is cheap (about a third of
an answered read: api/raw_answers.py); and SQLite sessions close without three turns each
(store/db.py `InlineSession`). Tried and not kept (runs on a machine at load 4-9, so only
hints): refusing every read while a write is in flight (56-100 % of the unloaded speed against
54-75 % before, answered p99 worse) and one read admitted per turn while writing (68-94 %
against 57-67 %): the count at admission gives the same bound with the existing caps.

Writes (POST, DELETE, ...) are refused only at the in-flight cap, never for lag: a write is
rarer, stores its work in one transaction, and refusing it costs the client a retry (the request
did nothing; with `Idempotency-Key` a create is safe to repeat anyway). `/health*`,
`/metrics` and everything outside /api are never refused or counted, so orchestrators and
Prometheus always see the truth. Refusals are counted in
`novita_manager_requests_shed_total{reason}`; the requests in flight and the loop lag are the
gauges `novita_manager_api_requests_in_flight` and `novita_manager_event_loop_lag_seconds`. The
limits are per process.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import re
import time
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from novita_manager.api.auth import is_api_path, refuse
from novita_manager.api.events import EVENT_STREAM_PATHS
from novita_manager.errors import ServiceUnavailable
from novita_manager.logging import bound_context, get_logger, new_request_id
from novita_manager.metrics import Metrics

log = get_logger("novita_manager.http")

LAG_INTERVAL = 0.05  # seconds between two wake-ups of the lag monitor
BUSY_WINDOW = 10  # wake-ups over which the process's CPU use is measured (0.5 s)
SATURATED = 0.8  # of one core: the process is saturated (reads yield to writes in flight)
CROWDED_FOR = 0.5  # seconds reads yield to writes after one was refused with their whole share
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
WARN_EVERY = 10.0  # seconds between two warnings about shed requests
RETRY_AFTER = {"Retry-After": "1"}
WRITES_FIRST = 4  # while a write is in flight, reads get 1/4 of their cap and lag budget
IN_FLIGHT = "in_flight"
READS_IN_FLIGHT = "reads_in_flight"
LOOP_LAG = "loop_lag"
ADMITTED = "novita_manager.admitted"  # scope key: the protocol's `Admitted` for the request
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")


class LoopLagMonitor:
    """Measures how late the running event loop wakes a task that sleeps `interval` at a time."""

    def __init__(self, interval: float = LAG_INTERVAL) -> None:
        self.interval = interval
        self.last = 0.0  # seconds late at the last wake-up
        self.previous = 0.0  # and at the one before
        self._due: float | None = None  # monotonic time of the next expected wake-up
        self._task: asyncio.Task[None] | None = None
        # (monotonic, process CPU) at the last BUSY_WINDOW wake-ups: the process's CPU use.
        self._samples: collections.deque[tuple[float, float]] = collections.deque(
            maxlen=BUSY_WINDOW
        )

    def busy(self) -> float:
        """CPU seconds this process used per second over the last BUSY_WINDOW wake-ups (1.0:
        one core's worth); 0 before two wake-ups."""
        samples = self._samples
        if len(samples) < 2:
            return 0.0
        (wall0, cpu0), (wall1, cpu1) = samples[0], samples[-1]
        return (cpu1 - cpu0) / max(wall1 - wall0, 1e-9)

    def lag(self) -> float:
        """Seconds the loop is late: how overdue the next wake-up is now, or, if less, the lesser
        of the last two measurements (one long callback alone is not a late loop)."""
        sustained = min(self.last, self.previous)
        due = self._due
        if due is None:
            return sustained
        return max(sustained, time.monotonic() - due)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="loop-lag")

    async def stop(self) -> None:
        task, self._task = self._task, None
        self._due = None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        while True:
            due = time.monotonic() + self.interval
            self._due = due
            await asyncio.sleep(self.interval)
            now = time.monotonic()
            self.previous, self.last = self.last, max(0.0, now - due)
            self._samples.append((now, time.process_time()))


class Admission:
    """The limits and the live counts; `AdmissionMiddleware` asks it before each /api request."""

    def __init__(
        self,
        max_in_flight: int,
        max_reads_in_flight: int,
        max_loop_lag: float,
        monitor: LoopLagMonitor,
        *,
        writes_first: bool = True,
    ) -> None:
        self.max_in_flight = max_in_flight  # every /api request; 0: no cap
        self.max_reads_in_flight = max_reads_in_flight  # reads only; 0: no cap
        self.max_loop_lag = max_loop_lag  # seconds; 0: reads are not shed for lag
        self.monitor = monitor
        # Reads yield to writes in flight always (the pipelines share this loop), or else only
        # while the process is saturated (`SATURATED`).
        self.writes_first = writes_first
        self.in_flight = 0
        self.reads_in_flight = 0
        self._crowded_until = 0.0  # monotonic: reads crowded the process until then
        self.metrics: Metrics | None = None
        self._shed_counters: dict[str, Any] = {}  # reason: its labelled counter
        self._messages: dict[str, str] = {}
        self._last_warning = 0.0

    def bind(self, metrics: Metrics) -> None:
        """Count refusals in, and expose the gauges through, a runtime's registry."""
        self.metrics = metrics
        metrics.watch_admission(in_flight=lambda: self.in_flight, loop_lag=self.monitor.lag)

    def refusal(self, method: str) -> str | None:
        """The reason to refuse a request now (`in_flight`, `reads_in_flight`, `loop_lag`), or
        None to admit it. While a write is in flight, reads get a WRITES_FIRST-th of their cap
        and of the lag budget: always with `writes_first`, else while reads crowd the process
        (see the module docstring)."""
        if self.max_in_flight and self.in_flight >= self.max_in_flight:
            return IN_FLIGHT
        if method not in READ_METHODS:
            return None
        cap = self.max_reads_in_flight
        writing = self.in_flight > self.reads_in_flight and (
            self.writes_first or self._crowded() or self.monitor.busy() >= SATURATED
        )
        if writing:
            cap = max(1, cap // WRITES_FIRST)
        reason = None
        if self.max_reads_in_flight and self.reads_in_flight >= cap:
            reason = READS_IN_FLIGHT
        elif self.max_loop_lag and self.monitor.lag() > (
            self.max_loop_lag / WRITES_FIRST if writing else self.max_loop_lag
        ):
            reason = LOOP_LAG
        if reason is not None and not writing:
            # Refused with their whole share: reads crowd the process. (Not refreshed by the
            # refusals at a quarter share, which would hold it for as long as writes go on.)
            self._crowded_until = time.monotonic() + CROWDED_FOR
        return reason

    def admit(self, read: bool) -> None:
        """Count an admitted request in flight until `release`. The protocol counts a request
        when it admits it, before its task first runs: else every read arriving in the same
        turn of the loop saw the same count and was admitted (measured on PostgreSQL: the
        64-request cap reached with 16 reads allowed, and creates refused)."""
        self.in_flight += 1
        self.reads_in_flight += read

    def release(self, read: bool) -> None:
        self.in_flight -= 1
        self.reads_in_flight -= read

    def _crowded(self) -> bool:
        return self._crowded_until > 0.0 and time.monotonic() < self._crowded_until

    def shed(self, reason: str) -> ServiceUnavailable:
        """Count a refusal and return its error (the app's path; the protocol's is `count`)."""
        self.count(reason)
        return ServiceUnavailable(
            self.message(reason), details={"reason": reason}, headers=RETRY_AFTER
        )

    def count(self, reason: str) -> None:
        """Count a refusal in the metrics, and warn at most every WARN_EVERY seconds."""
        counter = self._shed_counters.get(reason)
        if counter is None and self.metrics is not None:
            counter = self._shed_counters[reason] = self.metrics.requests_shed.labels(reason)
        if counter is not None:
            counter.inc()
        now = time.monotonic()
        if now - self._last_warning >= WARN_EVERY:
            self._last_warning = now
            log.warning(
                "requests_shed",
                reason=reason,
                in_flight=self.in_flight,
                reads_in_flight=self.reads_in_flight,
                loop_lag_ms=round(self.monitor.lag() * 1000, 1),
                max_in_flight=self.max_in_flight,
                max_loop_lag_ms=round(self.max_loop_lag * 1000, 1),
            )

    def message(self, reason: str) -> str:
        """The error message of a refusal for `reason` (the limits are fixed, so it is too)."""
        message = self._messages.get(reason)
        if message is None:
            message = self._messages[reason] = self._message(reason)
        return message

    def _message(self, reason: str) -> str:
        if reason == IN_FLIGHT:
            return (
                f"The service is busy: {self.max_in_flight} requests in flight "
                "(API_MAX_IN_FLIGHT); retry shortly"
            )
        if reason == READS_IN_FLIGHT:
            return (
                f"The service is busy: {self.max_reads_in_flight} reads in flight "
                "(API_MAX_READS_IN_FLIGHT); retry shortly"
            )
        return "The service is overloaded (its event loop is late); retry shortly"


class Admitted:
    """A request the protocol admitted and counted in flight: released once, by the app's
    AdmissionMiddleware when the app is done with it (as a request it admits itself), or else
    when its task ends (a task cancelled before it ran). Released only at the task's end, a
    kept-alive connection's next read was often parsed before the callback ran, and wrk's 10
    connections were refused at a cap of 16."""

    __slots__ = ("admission", "read")

    def __init__(self, admission: Admission, read: bool) -> None:
        self.admission: Admission | None = admission
        self.read = read
        admission.admit(read)

    def release(self, *_: object) -> None:
        admission, self.admission = self.admission, None
        if admission is not None:
            admission.release(self.read)


def valid_request_id(given: str) -> str:
    """The client's X-Request-ID when it is well formed, else a new one."""
    return given if _VALID_REQUEST_ID.match(given) else new_request_id()


def request_id_of(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            return valid_request_id(value.decode("latin-1"))
    return new_request_id()


class AdmissionMiddleware:
    """The outermost HTTP layer: admit an /api request, or refuse it before anything else runs."""

    def __init__(self, app: ASGIApp, admission: Admission) -> None:
        self.app = app
        self.admission = admission

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not is_api_path(scope["path"]):
            await self.app(scope, receive, send)
            return
        admitted = scope.get(ADMITTED)
        if admitted is not None:  # admitted and counted by the protocol (http_server.py)
            try:
                await self.app(scope, receive, send)
            finally:
                admitted.release()
            return
        admission = self.admission
        reason = admission.refusal(scope["method"])
        if reason is not None:
            error = admission.shed(reason)
            with bound_context(request_id=request_id_of(scope)):
                await refuse(scope, receive, send, error)
            return
        if scope["path"] in EVENT_STREAM_PATHS:
            # A stream lasts as long as the client listens: admitted like a read, then counted
            # by its own cap (EVENTS_MAX_STREAMS), not as a request in flight.
            await self.app(scope, receive, send)
            return
        read = scope["method"] in READ_METHODS
        admission.admit(read)
        try:
            await self.app(scope, receive, send)
        finally:
            admission.release(read)
