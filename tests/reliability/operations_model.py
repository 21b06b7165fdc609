"""Operation requests under random load: a hypothesis state machine and its invariant checker.

`OperationsMachine` (built by `make_machine`) drives random sequences of create, start, stop and
delete against the REAL service and simulator over HTTP on 127.0.0.1: single requests, bursts of
2-4 concurrent requests on one instance, stop-then-delete on up to 6 instances in parallel,
stop-then-start (restarts) on up to 4, and short waits. It keeps a model (the instances it
created, every answer, the `requestSeq` of each
202). At the end of every example (teardown) it waits for quiescence (bounded) and checks:

(a) every request answered 202 took effect, or is recorded in `GET /api/instances/{id}/operations`
    as superseded or refused with a reason (never lost, never left pending); the final state
    agrees with the last request that succeeded (delete: row deleted and the Novita instance
    gone; stop: row stopped and Novita `exited`; start: running on both sides);
(b) every live Novita instance carries the `NOVITA_MANAGER_ID` marker of a row that is not
    deleted and whose `novitaInstanceId` is that instance; at most one live instance per marker;
(c) every change into a terminal status (`instance_events.to_status` in running, failed,
    stopped, deleted) has exactly one `webhook_deliveries` row of the matching type, delivered,
    and the receiver got each delivery id.

Violations are collected (with the instance, the request and its recorded state), not raised, so
hypothesis never shrinks or replays against a live service: the caller asserts on
`OperationsReport.problems()`. `run_operations` is the one entry point: the CI test runs it small,
`bench/reliability.py` runs it at >= 500 steps (`scenarios.operations` starts the processes).

Against a service without the operations log (404 on `/operations`), (a) falls back to "the last
request answered 202 decides the final state", which is exactly what the lost-delete bug breaks.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import re
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
from hypothesis import HealthCheck, Phase, seed, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    precondition,
    rule,
    run_state_machine_as_test,
)

from tests.fixtures.webhook_receiver import WebhookReceiver
from tests.reliability.harness import marker_of

OPERATIONS = ("start", "stop", "delete")
TRANSITIONAL = frozenset({"creating", "starting", "stopping", "deleting"})
TERMINAL = ("running", "failed", "stopped", "deleted")
OPEN_STATES = frozenset({"pending", "in_progress"})
RECORD_STATES = ("pending", "in_progress", "succeeded", "failed", "superseded", "refused")
NOVITA_NOT_LIVE = frozenset({"toRemove", "removing", "removed"})
# What the last succeeded request leaves: our status, and Novita's (None: no live instance).
EXPECTED_AFTER = {
    "start": ("running", "running"),
    "stop": ("stopped", "exited"),
    "delete": ("deleted", None),
}
WAITS = (0.05, 0.2, 0.6)
INDEX_MAX = 1 << 16  # instance choices: an index into the pool at the time of the step


# -- the model ---------------------------------------------------------------------------------


@dataclass
class Sent:
    """One operation request and its answer (status None: no answer, a transport error)."""

    instance_id: str
    operation: str
    rule: str
    status: int | None
    seq: int | None
    answer: str
    at: float


@dataclass
class ModelInstance:
    id: str
    name: str
    sent: list[Sent] = field(default_factory=list)

    def accepted(self) -> list[Sent]:
        return [s for s in self.sent if s.status == 202]


@dataclass
class OperationsReport:
    """What a run saw; `problems()` lists every violation (empty: all invariants held)."""

    database: str
    steps: int = 0
    examples: int = 0
    seconds: float = 0.0
    instances: int = 0
    rules: Counter[str] = field(default_factory=Counter)
    answers: Counter[str] = field(default_factory=Counter)  # "stop 202", "delete 409", ...
    outcomes: Counter[str] = field(default_factory=Counter)  # recorded state of each 202
    reasons: Counter[str] = field(default_factory=Counter)  # "refused: <reason, #N → #n>"
    terminal_changes: int = 0
    deliveries: int = 0
    novita_instances: int = 0
    quiescence_seconds: list[float] = field(default_factory=list)
    operations_log: bool | None = None  # None until an instance was checked
    live_floor_ms: tuple[float, float] | None = None  # idle /health/live p50, p99
    violations: list[str] = field(default_factory=list)

    @property
    def requests(self) -> int:
        return sum(self.answers.values())

    @property
    def accepted(self) -> int:
        return sum(n for key, n in self.answers.items() if key.endswith(" 202"))

    def problems(self) -> list[str]:
        return list(self.violations)


@dataclass
class Target:
    """The system under test: the service's URL and database, the simulator, the receiver."""

    base_url: str
    database_url: str
    sim: Any  # SimulatorServer or SimulatorProcess: `.control`
    receiver: WebhookReceiver
    quiescence_timeout: float = 60.0


# -- reading the system ------------------------------------------------------------------------


def _sqlite_path(database_url: str) -> str | None:
    match = re.match(r"sqlite(?:\+\w+)?:///(.+)", database_url)
    return match.group(1) if match else None


def read_history(database_url: str, ids: list[str]) -> tuple[list[tuple], list[tuple]]:
    """(instance_events rows (instance_id, to_status, from_status, reason),
    webhook_deliveries rows (id, instance_id, event_type, status)) of these instances."""
    if not ids:
        return [], []
    events_sql = (
        "SELECT instance_id, to_status, from_status, reason FROM instance_events "
        "WHERE instance_id IN ({}) ORDER BY id"
    )
    deliveries_sql = (
        "SELECT id, instance_id, event_type, status FROM webhook_deliveries "
        "WHERE instance_id IN ({})"
    )
    path = _sqlite_path(database_url)
    if path is not None:
        marks = ",".join("?" * len(ids))
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30) as conn:
            events = conn.execute(events_sql.format(marks), ids).fetchall()
            deliveries = conn.execute(deliveries_sql.format(marks), ids).fetchall()
        return events, deliveries
    dsn = re.sub(r"^postgresql\+\w+://", "postgresql://", database_url)

    async def read() -> tuple[list[tuple], list[tuple]]:
        import asyncpg  # type: ignore[import-untyped]

        conn = await asyncpg.connect(dsn)
        try:
            marks = ",".join(f"${i + 1}" for i in range(len(ids)))
            events = await conn.fetch(events_sql.format(marks), *ids)
            deliveries = await conn.fetch(deliveries_sql.format(marks), *ids)
        finally:
            await conn.close()
        return [tuple(r) for r in events], [tuple(r) for r in deliveries]

    return asyncio.run(read())


def _seq_named(reason: str | None) -> list[int]:
    return [int(n) for n in re.findall(r"#(\d+)", reason or "")]


def _when(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def _describe(record: dict[str, Any]) -> str:
    reason = f" ({record.get('reason')})" if record.get("reason") else ""
    return f"#{record.get('seq')} {record.get('operation')} recorded {record.get('state')}{reason}"


# -- the checks --------------------------------------------------------------------------------


@dataclass
class Snapshot:
    """One reading of everything the checks look at, for the instances of one example."""

    views: dict[str, dict[str, Any]]
    operations: dict[str, list[dict[str, Any]] | None]  # None: the service has no such log
    novita: list[dict[str, Any]]
    events: list[tuple]
    deliveries: list[tuple]
    received_ids: set[str]


def take_snapshot(http: httpx.Client, target: Target, ids: list[str]) -> Snapshot:
    views: dict[str, dict[str, Any]] = {}
    operations: dict[str, list[dict[str, Any]] | None] = {}
    for instance_id in ids:
        view = http.get(f"/api/instances/{instance_id}")
        views[instance_id] = view.json() if view.status_code == 200 else {"status": "?"}
        ops = http.get(f"/api/instances/{instance_id}/operations")
        operations[instance_id] = ops.json()["operations"] if ops.status_code == 200 else None
    events, deliveries = read_history(target.database_url, ids)
    received = {r.headers.get("webhook-id", "") for r in target.receiver.requests()}
    return Snapshot(views, operations, target.sim.control.instances(), events, deliveries, received)


def quiet(snapshot: Snapshot) -> list[str]:
    """What is still moving (empty: quiescent)."""
    moving = []
    for instance_id, view in snapshot.views.items():
        if view.get("status") in TRANSITIONAL:
            moving.append(f"{instance_id} is {view.get('status')}")
        for record in snapshot.operations.get(instance_id) or []:
            if record.get("state") in OPEN_STATES:
                moving.append(f"{instance_id} request {_describe(record)}")
    for delivery_id, instance_id, event_type, status in snapshot.deliveries:
        if status == "pending" or (
            status == "delivered" and delivery_id not in snapshot.received_ids
        ):
            moving.append(f"{instance_id} {event_type} delivery {delivery_id} {status}")
    return moving


def check_instance(model: ModelInstance, snapshot: Snapshot, report: OperationsReport) -> list[str]:
    """(a) and the final state, for one instance; violations name the instance and request."""
    found: list[str] = []
    view = snapshot.views[model.id]
    label = f"{model.id} ({model.name}, now {view.get('status')})"
    records = snapshot.operations.get(model.id)
    accepted = model.accepted()
    live = [i for i in snapshot.novita if marker_of(i) == model.id and _live(i)]
    novita_status = live[0].get("status") if live else None

    def expect(operation: str, why: str) -> None:
        status, upstream = EXPECTED_AFTER[operation]
        if view.get("status") != status:
            found.append(f"{label}: {why} ({operation}), but the row is {view.get('status')}")
        if upstream is None and live:
            found.append(
                f"{label}: {why} (delete), but Novita instance {live[0]['id']} is {novita_status}"
            )
        if upstream is not None and novita_status != upstream:
            found.append(f"{label}: {why} ({operation}), but Novita says {novita_status}")

    if records is None:  # no operations log: the last accepted request must decide the state
        report.operations_log = False
        report.outcomes["unrecorded"] += len(accepted)
        if accepted:
            final = accepted[-1].operation
            expect(final, f"the last request answered 202 was {final}")
        return found

    report.operations_log = True
    by_seq = {r.get("seq"): r for r in records}
    for record in records:
        report.outcomes[str(record.get("state"))] += 1
        if record.get("state") in ("failed", "refused", "superseded"):
            reason = re.sub(r"#\d+", "#n", str(record.get("reason")))
            report.reasons[f"{record.get('operation')} {record.get('state')}: {reason}"] += 1
    seen_seqs: dict[int, Sent] = {}
    for sent in accepted:
        if not isinstance(sent.seq, int):
            found.append(
                f"{label}: {sent.operation} ({sent.rule}) answered 202 without an "
                f"integer requestSeq: {sent.answer}"
            )
            continue
        earlier = seen_seqs.get(sent.seq)
        if earlier is not None and earlier.operation != sent.operation:
            found.append(
                f"{label}: requestSeq {sent.seq} answered for both "
                f"{earlier.operation} and {sent.operation}"
            )
        seen_seqs[sent.seq] = sent
        match = by_seq.get(sent.seq)
        if match is None:
            found.append(
                f"{label}: request #{sent.seq} {sent.operation} ({sent.rule}) answered "
                "202 but is not in the operations history (lost)"
            )
            continue
        record = match
        if record.get("operation") != sent.operation:
            found.append(
                f"{label}: request #{sent.seq} was {sent.operation}, the history says "
                f"{_describe(record)}"
            )
        state = record.get("state")
        if state not in RECORD_STATES:
            found.append(f"{label}: request {_describe(record)}: unknown state")
        elif state in OPEN_STATES:
            found.append(f"{label}: request {_describe(record)} after quiescence")
        elif state in ("failed", "superseded", "refused") and not record.get("reason"):
            found.append(f"{label}: request {_describe(record)} without a reason")
        if state == "superseded" and not any(
            n > sent.seq and n in by_seq for n in _seq_named(record.get("reason"))
        ):
            found.append(f"{label}: request {_describe(record)}: the reason names no later request")
    unanswered = any(s.status is None for s in model.sent)
    for record in records:
        if record.get("seq") not in seen_seqs and not unanswered:
            found.append(
                f"{label}: request {_describe(record)} is in the history but no "
                "request was answered 202 with that seq"
            )
    # The same operation asked again joins the request before it and shares its outcome.
    ordered = sorted(records, key=lambda r: int(r.get("seq") or 0))
    for before, after in itertools.pairwise(ordered):
        if (
            before.get("operation") == after.get("operation")
            and before.get("state") != after.get("state")
            and not {before.get("state"), after.get("state")} & OPEN_STATES
        ):
            found.append(
                f"{label}: request {_describe(after)} joined {_describe(before)} but does "
                "not share its outcome"
            )
    # Requests run in order of acceptance; after a delete succeeded nothing but deletes that
    # joined it can succeed.
    done = [r for r in records if r.get("state") in ("succeeded", "failed")]
    deleted_at = next(
        (
            r["seq"]
            for r in done
            if r.get("operation") == "delete" and r.get("state") == "succeeded"
        ),
        None,
    )
    for record in done:
        if (
            deleted_at is not None
            and record["seq"] > deleted_at
            and record.get("operation") != "delete"
        ):
            found.append(
                f"{label}: request {_describe(record)} after delete #{deleted_at} succeeded"
            )
    for first, second in itertools.pairwise(done):
        a, b = _when(first.get("resolvedAt")), _when(second.get("resolvedAt"))
        if a and b and b < a:
            found.append(f"{label}: {_describe(second)} resolved before {_describe(first)}")
    if done and done[-1].get("state") == "succeeded":
        last = done[-1]
        expect(str(last.get("operation")), f"the last request that succeeded is #{last['seq']}")
    elif not done and view.get("status") not in ("running", "failed"):
        found.append(f"{label}: no request took effect, yet the row is {view.get('status')}")
    return found


def _live(item: dict[str, Any]) -> bool:
    return not item.get("removed") and item.get("status") not in NOVITA_NOT_LIVE


def check_ownership(
    models: dict[str, ModelInstance], known: set[str], snapshot: Snapshot
) -> list[str]:
    """(b): every live Novita instance of this example (or of nobody) is owned by exactly one
    live row that points at it; no row owns two."""
    found: list[str] = []
    live = [item for item in snapshot.novita if _live(item)]
    per_marker = Counter(marker_of(item) for item in live)
    for item in live:
        marker = marker_of(item)
        if marker is None or marker not in known:
            found.append(
                f"Novita instance {item['id']} ({item.get('status')}) has marker "
                f"{marker!r}, owned by no row (orphan)"
            )
            continue
        if marker not in models:
            continue  # an earlier example's instance: checked then
        view = snapshot.views[marker]
        if view.get("status") == "deleted":
            found.append(
                f"{marker}: the row is deleted but Novita instance {item['id']} is "
                f"{item.get('status')}"
            )
        if view.get("novitaInstanceId") != item["id"]:
            found.append(
                f"{marker}: Novita instance {item['id']} carries its marker, but the "
                f"row points at {view.get('novitaInstanceId')}"
            )
    for marker, count in per_marker.items():
        if count > 1 and marker in models:
            ids = [i["id"] for i in live if marker_of(i) == marker]
            found.append(f"{marker}: owns {count} live Novita instances {ids}")
    by_id = {item["id"]: item for item in snapshot.novita}
    for instance_id, view in snapshot.views.items():
        pointed = view.get("novitaInstanceId")
        if view.get("status") not in ("deleted", "failed") and pointed:
            upstream = by_id.get(pointed)
            if upstream is None or not _live(upstream):
                state = "unknown to Novita" if upstream is None else upstream.get("status")
                found.append(
                    f"{instance_id}: the row is {view.get('status')} but its Novita "
                    f"instance {pointed} is {state}"
                )
    return found


def check_webhooks(snapshot: Snapshot, report: OperationsReport) -> list[str]:
    """(c): per instance and terminal status, changes == deliveries of that type, each
    delivered and received."""
    found: list[str] = []
    changes: Counter[tuple[str, str]] = Counter()
    for instance_id, to_status, _from, _reason in snapshot.events:
        if to_status in TERMINAL:
            changes[(instance_id, f"instance.{to_status}")] += 1
    sent: Counter[tuple[str, str]] = Counter()
    for delivery_id, instance_id, event_type, status in snapshot.deliveries:
        if event_type not in {f"instance.{s}" for s in TERMINAL}:
            continue
        sent[(instance_id, event_type)] += 1
        if status != "delivered":
            found.append(f"{instance_id}: {event_type} delivery {delivery_id} is {status}")
        elif delivery_id not in snapshot.received_ids:
            found.append(
                f"{instance_id}: {event_type} delivery {delivery_id} is marked "
                "delivered but the receiver never got it"
            )
    for key in sorted(changes.keys() | sent.keys()):
        if changes[key] != sent[key]:
            found.append(
                f"{key[0]}: {changes[key]} change(s) into "
                f"{key[1].removeprefix('instance.')} but {sent[key]} {key[1]} "
                "deliveries"
            )
    report.terminal_changes += sum(changes.values())
    report.deliveries += sum(sent.values())
    return found


# -- the run -----------------------------------------------------------------------------------


class OperationsRun:
    """State shared by every example of one run: the clients, the report, the known ids."""

    def __init__(self, target: Target, report: OperationsReport, tag: str) -> None:
        self.target = target
        self.report = report
        self.tag = tag
        self.http = httpx.Client(
            base_url=target.base_url, timeout=30, limits=httpx.Limits(max_connections=32)
        )
        self.pool = ThreadPoolExecutor(max_workers=16, thread_name_prefix="ops")
        self.known: set[str] = set()
        self.progress: Callable[[str], None] | None = None
        self._lock = threading.Lock()
        self._examples = itertools.count()

    def close(self) -> None:
        self.pool.shutdown(wait=True)
        self.http.close()

    def next_example(self) -> int:
        return next(self._examples)

    def count(self, key: str) -> None:
        with self._lock:
            self.report.answers[key] += 1

    def send(self, model: ModelInstance, operation: str, rule_name: str) -> Sent:
        path = f"/api/instances/{model.id}"
        method = "DELETE" if operation == "delete" else "POST"
        if operation != "delete":
            path = f"{path}/{operation}"
        try:
            response = self.http.request(method, path)
        except httpx.TransportError as error:
            sent = Sent(model.id, operation, rule_name, None, None, repr(error), time.time())
        else:
            body: Any = None
            with contextlib.suppress(ValueError):
                body = response.json()
            seq = body.get("requestSeq") if isinstance(body, dict) else None
            answer = response.text[:300]
            sent = Sent(
                model.id, operation, rule_name, response.status_code, seq, answer, time.time()
            )
        self.count(f"{operation} {sent.status if sent.status is not None else 'no answer'}")
        with self._lock:
            model.sent.append(sent)
        return sent

    def check(self, models: dict[str, ModelInstance], trace: list[str]) -> None:
        """Wait for quiescence (bounded), then run every check; record what broke."""
        ids = list(models)
        began = time.monotonic()
        deadline = began + self.target.quiescence_timeout
        while True:
            snapshot = take_snapshot(self.http, self.target, ids)
            moving = quiet(snapshot)
            if not moving or time.monotonic() > deadline:
                break
            time.sleep(0.25)
        self.report.quiescence_seconds.append(time.monotonic() - began)
        found = [f"not quiescent after {self.target.quiescence_timeout:.0f} s: {m}" for m in moving]
        for model in models.values():
            for sent in model.sent:
                if sent.status is None or sent.status >= 500:
                    found.append(
                        f"{model.id}: {sent.operation} ({sent.rule}) answered "
                        f"{sent.status}: {sent.answer}"
                    )
                elif sent.status not in (202, 409):
                    found.append(
                        f"{model.id}: {sent.operation} ({sent.rule}) answered "
                        f"{sent.status} (expected 202 or 409): {sent.answer}"
                    )
            found += check_instance(model, snapshot, self.report)
        found += check_ownership(models, self.known, snapshot)
        found += check_webhooks(snapshot, self.report)
        self.report.novita_instances = len(snapshot.novita)
        if self.progress is not None:
            self.progress(
                f"example {trace[0]}: {self.report.steps} steps, {len(found)} violations, "
                f"quiescent after {self.report.quiescence_seconds[-1]:.1f} s"
            )
        if found:
            steps = "\n    ".join(trace)
            self.report.violations += [f"[{self.tag} example {trace[0]}] {v}" for v in found]
            self.report.violations.append(f"[{self.tag}] steps of that example:\n    {steps}")


def make_machine(run: OperationsRun) -> type[RuleBasedStateMachine]:
    """The state machine class bound to one run (hypothesis builds a fresh instance per
    example; the service and simulator stay up across examples)."""

    class OperationsMachine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.example = run.next_example()
            self.models: dict[str, ModelInstance] = {}
            self.trace: list[str] = [str(self.example)]
            self.created = 0

        def _step(self, text: str) -> None:
            run.report.steps += 1
            run.report.rules[text.split(" ", 1)[0]] += 1
            self.trace.append(text)

        def _one(self, instance_id: str, operation: str, rule_name: str) -> None:
            sent = run.send(self.models[instance_id], operation, rule_name)
            self.trace.append(f"  → {operation} {instance_id[:8]}: {sent.status} seq={sent.seq}")

        def _alive(self) -> list[str]:
            """Instances with no accepted delete yet."""
            return sorted(
                i
                for i, m in self.models.items()
                if all(s.operation != "delete" for s in m.accepted())
            )

        def _pick(self, data: st.DataObject) -> str:
            """An instance of this example: mostly one not yet asked to delete (a request on a
            deleted one only tests the 409), sometimes any. The draws never depend on the
            service's answers (hypothesis requires the same choices to draw the same way)."""
            any_one = data.draw(st.integers(0, 4), label="any instance") == 0
            index = data.draw(st.integers(0, INDEX_MAX), label="instance")
            alive = self._alive()
            pool = sorted(self.models) if any_one or not alive else alive
            return pool[index % len(pool)]

        def _pick_several(self, data: st.DataObject, most: int) -> list[str]:
            """1..most distinct instances, preferably not yet asked to delete."""
            indexes = data.draw(
                st.lists(st.integers(0, INDEX_MAX), min_size=1, max_size=most), label="instances"
            )
            pool = self._alive() or sorted(self.models)
            return list(dict.fromkeys(pool[i % len(pool)] for i in indexes))

        @rule(running=st.booleans())
        def create(self, running: bool) -> None:
            """Create; with `running`, wait (at most 15 s) until it runs, so requests also meet
            running instances (a stop on a creating one is refused by older services)."""
            created = self._create("create_running" if running else "create")
            if created is not None and running:
                self._settle([created], 15)

        def _create(self, rule_name: str) -> str | None:
            name = f"ops-{run.tag}-{self.example}-{self.created}"
            self.created += 1
            self._step(f"{rule_name} {name}")
            body = {"name": name, "productName": "RTX 4090 24GB", "templateId": "1"}
            try:
                response = run.http.post("/api/instances", json=body)
            except httpx.TransportError as error:
                run.count("create no answer")
                run.report.violations.append(f"create {name}: no answer ({error!r})")
                return None
            run.count(f"create {response.status_code}")
            if response.status_code != 201:
                run.report.violations.append(
                    f"create {name}: {response.status_code} {response.text[:300]}"
                )
                return None
            instance_id = str(response.json()["instanceId"])
            self.models[instance_id] = ModelInstance(instance_id, name)
            run.known.add(instance_id)
            run.report.instances += 1
            self.trace[-1] += f" → {instance_id}"
            return instance_id

        @precondition(lambda self: self.models)
        @rule(data=st.data())
        def start(self, data: st.DataObject) -> None:
            instance = self._pick(data)
            self._step(f"start {instance[:8]}")
            self._one(instance, "start", "start")

        @precondition(lambda self: self.models)
        @rule(data=st.data())
        def stop(self, data: st.DataObject) -> None:
            instance = self._pick(data)
            self._step(f"stop {instance[:8]}")
            self._one(instance, "stop", "stop")

        @precondition(lambda self: self.models)
        @rule(data=st.data())
        def delete(self, data: st.DataObject) -> None:
            instance = self._pick(data)
            self._step(f"delete {instance[:8]}")
            self._one(instance, "delete", "delete")

        @precondition(lambda self: self.models)
        @rule(
            data=st.data(),
            operations=st.lists(st.sampled_from(OPERATIONS), min_size=2, max_size=4),
        )
        def burst(self, data: st.DataObject, operations: list[str]) -> None:
            """2-4 operations on one instance at the same moment."""
            instance = self._pick(data)
            self._step(f"burst {instance[:8]} {'+'.join(operations)}")
            barrier = threading.Barrier(len(operations))
            model = self.models[instance]

            def send(operation: str) -> Sent:
                barrier.wait(timeout=10)
                return run.send(model, operation, "burst")

            for sent in run.pool.map(send, operations):
                self.trace.append(f"  → {sent.operation}: {sent.status} seq={sent.seq}")

        def _pairs_in_parallel(
            self, data: st.DataObject, settled: bool, most: int, second: str
        ) -> None:
            """On up to `most` instances at once, stop and right after it `second`; with
            `settled`, once each rests first."""
            chosen = self._pick_several(data, most)
            label = f"stop_then_{second}"
            self._step(f"{label} {' '.join(i[:8] for i in chosen)} settled={settled}")
            if settled:
                self._settle(chosen, 15)
            barrier = threading.Barrier(len(chosen))

            def both(instance_id: str) -> tuple[Sent, Sent]:
                barrier.wait(timeout=10)
                model = self.models[instance_id]
                return run.send(model, "stop", label), run.send(model, second, label)

            for stop, then in run.pool.map(both, chosen):
                self.trace.append(
                    f"  → {stop.instance_id[:8]}: stop {stop.status} "
                    f"seq={stop.seq}, {second} {then.status} seq={then.seq}"
                )

        @precondition(lambda self: len(self.models) >= 1)
        @rule(data=st.data(), settled=st.booleans())
        def stop_then_delete_in_parallel(self, data: st.DataObject, settled: bool) -> None:
            """Issue 13's reproduction: on several instances at once, stop and right after it
            delete; with `settled`, once each rests (running, as in the issue)."""
            self._pairs_in_parallel(data, settled, 6, "delete")

        @precondition(lambda self: len(self.models) >= 1)
        @rule(data=st.data(), settled=st.booleans())
        def stop_then_start_in_parallel(self, data: st.DataObject, settled: bool) -> None:
            """A restart: on 1-4 instances at once, stop and right after it start (both are
            accepted on a running instance; the start waits for the stop)."""
            self._pairs_in_parallel(data, settled, 4, "start")

        @rule(seconds=st.sampled_from(WAITS))
        def wait(self, seconds: float) -> None:
            self._step(f"wait {seconds}")
            time.sleep(seconds)

        @precondition(lambda self: self.models)
        @rule(data=st.data())
        def settle(self, data: st.DataObject) -> None:
            """Wait (at most 10 s) until this instance is in no transitional status, so that
            later requests also start from running, stopped and deleted."""
            instance = self._pick(data)
            self._step(f"settle {instance[:8]}")
            self._settle([instance], 10)

        def _settle(self, instances: list[str], timeout: float) -> None:
            """Wait until none of these instances is in a transitional status (one deadline
            for all; what is still moving then is noted in the trace)."""
            deadline = time.monotonic() + timeout
            moving = list(instances)
            while moving and time.monotonic() < deadline:
                view = run.http.get(f"/api/instances/{moving[0]}")
                if view.status_code != 200 or view.json().get("status") not in TRANSITIONAL:
                    moving.pop(0)
                else:
                    time.sleep(0.1)
            if moving:
                self.trace.append(f"  (still moving after {timeout:.0f} s: {moving})")

        def teardown(self) -> None:
            run.report.examples += 1
            run.check(self.models, self.trace)

    return OperationsMachine


def live_floor(base_url: str, samples: int = 100) -> tuple[float, float]:
    """p50 and p99 (ms) of sequential `GET /health/live` on the idle service: the floor under
    every latency of the run on this machine."""
    took = []
    with httpx.Client(base_url=base_url, timeout=10) as http:
        http.get("/health/live")
        for _ in range(samples):
            began = time.perf_counter()
            http.get("/health/live").raise_for_status()
            took.append((time.perf_counter() - began) * 1000)
    took.sort()
    return took[len(took) // 2], took[min(len(took) - 1, round(len(took) * 0.99))]


def run_operations(
    target: Target,
    *,
    steps: int,
    step_count: int = 25,
    seed_value: int = 13,
    database: str = "sqlite",
    tag: str = "r",
    progress: Callable[[str], None] | None = None,
) -> OperationsReport:
    """Run examples of `step_count` steps (hypothesis seeded, no shrinking) until at least
    `steps` steps were taken; every example ends with the invariant checks."""
    report = OperationsReport(database=database)
    report.live_floor_ms = live_floor(target.base_url)
    run = OperationsRun(target, report, tag)
    run.progress = progress
    began = time.monotonic()
    try:
        machine = make_machine(run)
        rounds = 0
        while report.steps < steps:
            examples = max(1, -(-(steps - report.steps) // step_count))
            config = settings(
                max_examples=examples,
                stateful_step_count=step_count,
                deadline=None,
                database=None,
                phases=[Phase.explicit, Phase.generate],  # no shrinking against a live service
                suppress_health_check=list(HealthCheck),
                print_blob=False,
            )
            run_state_machine_as_test(seed(seed_value + rounds)(machine), settings=config)
            rounds += 1
            if progress is not None:
                progress(
                    f"{report.steps} steps, {report.examples} examples, "
                    f"{len(report.violations)} violation lines"
                )
    finally:
        run.close()
    report.seconds = time.monotonic() - began
    return report


def summary(report: OperationsReport) -> str:
    """One line for logs and assertion messages."""
    return (
        f"{report.database}: {report.steps} steps in {report.examples} examples, "
        f"{report.instances} instances, {report.requests} requests ({dict(report.answers)}), "
        f"outcomes {dict(report.outcomes)}, reasons {dict(report.reasons)}, "
        f"{report.terminal_changes} terminal changes, "
        f"{report.deliveries} deliveries, {len(report.violations)} violation lines, "
        f"{report.seconds:.0f} s"
    )


def dump(report: OperationsReport) -> str:
    return json.dumps({"summary": summary(report), "violations": report.violations[:200]}, indent=1)
