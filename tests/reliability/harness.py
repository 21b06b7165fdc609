"""The whole-system reliability harness: an API client that checks every answer, a lifecycle
driver, a webhook receiver that fails on purpose, and the final accounting against the simulator.

The scenarios (`scenarios.py`) run at any size: the tests in this folder use a small N in CI, and
`bench/reliability.py` runs the same code big and writes the figures to docs/benchmarks.md.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.fixtures.webhook_receiver import ReceivedRequest, WebhookReceiver

MARKER = "NOVITA_MANAGER_ID"
ALLOWED_5XX = frozenset({502, 503})  # upstream failure / circuit open: the contract allows them


@dataclass
class Report:
    """What one scenario saw; `problems()` lists every broken promise (empty: all kept)."""

    name: str
    n: int
    seconds: float = 0.0
    statuses: Counter[int] = field(default_factory=Counter)
    bad_answers: list[str] = field(default_factory=list)  # 5xx other than 502/503
    connection_errors: int = 0
    failed: list[str] = field(default_factory=list)  # instances that ended `failed`
    unfinished: list[str] = field(default_factory=list)
    duplicates: int = 0
    orphans: list[str] = field(default_factory=list)
    missing_upstream: list[str] = field(default_factory=list)
    not_removed: list[str] = field(default_factory=list)
    undelivered: dict[str, list[str]] = field(default_factory=dict)
    deliveries: int = 0  # webhook requests received (successful or not)
    upstream_calls: dict[str, dict[str, int]] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def problems(self) -> list[str]:
        found = []
        if self.bad_answers:
            found.append(f"{len(self.bad_answers)} 5xx answers: {self.bad_answers[:5]}")
        for label, items in (
            ("failed", self.failed),
            ("unfinished", self.unfinished),
            ("orphaned upstream", self.orphans),
            ("missing upstream", self.missing_upstream),
            ("not removed upstream", self.not_removed),
        ):
            if items:
                found.append(f"{len(items)} {label}: {items[:5]}")
        if self.failed:
            found.append(f"failure reasons: {self.extra.get('failure_reasons')}")
        if self.duplicates:
            found.append(f"{self.duplicates} duplicate Novita instances")
        for event, ids in self.undelivered.items():
            if ids:
                found.append(f"{len(ids)} without a delivered {event}: {ids[:5]}")
        return found

    def faults_seen(self) -> dict[str, int]:
        """Upstream answers that were faults, by outcome (status, hang, drop), all endpoints."""
        seen: Counter[str] = Counter()
        for outcomes in self.upstream_calls.values():
            for outcome, count in outcomes.items():
                if outcome not in ("200", "201"):
                    seen[outcome] += count
        return dict(sorted(seen.items()))


class Api:
    """The service's REST API from a client's side: retries connection failures (a killed
    process), rotates between replicas, and records every answer's status in the report."""

    def __init__(self, base_urls: list[str], report: Report, timeout: float = 30.0) -> None:
        self.base_urls = list(base_urls)
        self.report = report
        self._next = 0
        self._http = httpx.AsyncClient(timeout=timeout, limits=httpx.Limits(max_connections=64))

    async def aclose(self) -> None:
        await self._http.aclose()

    async def request(
        self, method: str, path: str, *, give_up_after: float = 120.0, **kwargs: Any
    ) -> httpx.Response:
        deadline = time.monotonic() + give_up_after
        while True:
            base = self.base_urls[self._next % len(self.base_urls)]
            self._next += 1
            try:
                response = await self._http.request(method, base + path, **kwargs)
            except httpx.TransportError:
                self.report.connection_errors += 1
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.1)
                continue
            self.report.statuses[response.status_code] += 1
            if response.status_code >= 500 and response.status_code not in ALLOWED_5XX:
                self.report.bad_answers.append(
                    f"{method} {path} → {response.status_code} {response.text[:200]}"
                )
            return response

    async def list_ids(self, status: str) -> dict[str, dict[str, Any]]:
        """Every instance with this status (all pages)."""
        found: dict[str, dict[str, Any]] = {}
        offset = 0
        while True:
            params: dict[str, Any] = {"status": status, "limit": 500, "offset": offset}
            response = await self.request("GET", "/api/instances", params=params)
            if response.status_code != 200:
                return found  # a 502/503 while upstream is down: look again later
            page = response.json()
            found.update({item["id"]: item for item in page["instances"]})
            offset += len(page["instances"])
            if not page["instances"] or offset >= page["total"]:
                return found


async def run_lifecycles(
    api: Api,
    n: int,
    *,
    delete: bool,
    timeout: float,
    concurrency: int = 10,
    spread: float = 0.0,
    prefix: str = "rel",
    last_after: asyncio.Event | None = None,
) -> list[str]:
    """POST n creates (with Idempotency-Keys, so a retry after a crash creates nothing new),
    delete each instance once it runs when `delete`, and wait until every one is done
    (`deleted`, or `running` without delete). Returns the instance ids in request order.

    The last create waits for `last_after` when given, so the lifecycles outlast whatever the
    caller does meanwhile (the crash scenario's kills), however fast the service is."""
    ids: list[str | None] = [None] * n
    limit = asyncio.Semaphore(concurrency)
    report = api.report

    async def create(index: int) -> None:
        if spread:
            await asyncio.sleep(spread * index / n)
        if last_after is not None and index == n - 1:
            await last_after.wait()
        body = {"name": f"{prefix}-{index}", "productName": "RTX 4090 24GB", "templateId": "1"}
        headers = {"Idempotency-Key": f"{prefix}-{index}"}
        async with limit:
            while True:
                response = await api.request("POST", "/api/instances", json=body, headers=headers)
                if response.status_code == 201:
                    ids[index] = response.json()["instanceId"]
                    return
                if response.status_code not in ALLOWED_5XX:
                    raise AssertionError(f"create {index}: {response.status_code} {response.text}")
                await asyncio.sleep(0.2)

    creating = asyncio.gather(*(create(i) for i in range(n)))
    deletes_sent: set[str] = set()
    target = "deleted" if delete else "running"
    deadline = time.monotonic() + timeout
    done: dict[str, dict[str, Any]] = {}
    creates_done = False
    next_note = time.monotonic() + 5
    while time.monotonic() < deadline:
        await asyncio.sleep(0.3)
        if not creates_done and creating.done():
            creating.result()  # raise what a create raised
            creates_done = True
        known = {i for i in ids if i is not None}
        failed = await api.list_ids("failed")
        report.failed = sorted(known & failed.keys())
        report.extra["failure_reasons"] = sorted(
            {str(failed[i].get("lastError"))[:300] for i in report.failed}
        )
        if delete:
            running = await api.list_ids("running")
            for instance_id in sorted(known & running.keys() - deletes_sent):
                response = await api.request("DELETE", f"/api/instances/{instance_id}")
                if response.status_code in (202, 409):  # 409: a retried DELETE already took
                    deletes_sent.add(instance_id)
        done = await api.list_ids(target)
        if time.monotonic() > next_note:
            next_note = time.monotonic() + 5
            print(f"[{report.name}] {len(known)}/{n} accepted, {len(done)} {target}, "
                  f"{len(report.failed)} failed", file=sys.stderr, flush=True)  # fmt: skip
        if creates_done and known <= done.keys():
            break
        if report.failed:
            break
    else:
        creating.cancel()
    known_ids = [i for i in ids if i is not None]
    report.unfinished = sorted(set(known_ids) - done.keys() - set(report.failed))
    if len(known_ids) < n:
        report.unfinished.append(f"{n - len(known_ids)} creates never accepted")
    return known_ids


class FlakyReceiver(WebhookReceiver):
    """A webhook receiver that answers 500 to a random share of deliveries (seeded), and
    remembers which deliveries it accepted."""

    def __init__(self, fail_rate: float = 0.5, seed: int = 1) -> None:
        super().__init__()
        self.fail_rate = fail_rate
        self._rng = random.Random(seed)
        self._accepted: list[ReceivedRequest] = []
        self._flaky_lock = threading.Lock()

    def accepted(self) -> list[ReceivedRequest]:
        with self._flaky_lock:
            return list(self._accepted)

    async def _app(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        request = ReceivedRequest(scope["method"], scope["path"], {}, body, time.time())
        with self._flaky_lock:
            status = 500 if self._rng.random() < self.fail_rate else 200
            if status == 200:
                self._accepted.append(request)
        with self._lock:
            self._requests.append(request)
            self._lock.notify_all()
        headers = [(b"content-length", b"2")]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": b"ok"})


def delivered_events(requests: list[ReceivedRequest]) -> dict[str, set[str]]:
    """Instance id → event types among the given (accepted) deliveries."""
    events: dict[str, set[str]] = {}
    for request in requests:
        event = json.loads(request.body)
        events.setdefault(event["data"]["instanceId"], set()).add(event["type"])
    return events


async def wait_delivered(
    accepted: Any, ids: list[str], events: tuple[str, ...], timeout: float
) -> dict[str, list[str]]:
    """Wait until every id has every event among the accepted deliveries; what is missing."""
    deadline = time.monotonic() + timeout
    while True:
        got = delivered_events(accepted())
        missing = {e: [i for i in ids if e not in got.get(i, set())] for e in events}
        if not any(missing.values()) or time.monotonic() > deadline:
            return missing
        await asyncio.sleep(0.2)


def marker_of(item: dict[str, Any]) -> str | None:
    return next((env["value"] for env in item.get("envs", []) if env["key"] == MARKER), None)


def account_upstream(report: Report, upstream: list[dict[str, Any]], ids: list[str],
                     expect_removed: bool) -> None:  # fmt: skip
    """Exactly one Novita instance per managed instance, none unknown (orphan), and (after
    deletes) every one removed."""
    wanted = set(ids)
    per_marker = Counter(marker_of(item) for item in upstream)
    report.duplicates = sum(count - 1 for marker, count in per_marker.items() if marker in wanted)
    report.orphans = [item["id"] for item in upstream if marker_of(item) not in wanted]
    report.missing_upstream = [i for i in ids if per_marker[i] == 0]
    if expect_removed:
        report.not_removed = [
            item["id"]
            for item in upstream
            if not item.get("removed") and item.get("status") not in ("removing", "removed")
        ]
    report.extra["upstream_instances"] = len(upstream)
