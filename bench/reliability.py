"""Reliability at full size: the scenarios of tests/reliability run big, results to the docs.

Usage: python -m bench.reliability [--only chaos,crashes,replicas,fuzzing,operations]
       [--chaos-n 200] [--crash-n 100] [--kills 20] [--replica-n 200] [--fuzz-examples 100]
       [--steps 500] [--ops-databases sqlite,postgresql] [--write-docs]

The same code as the CI tests (`tests/reliability/scenarios.py`, `fuzzing.py`), with the
sizes of issue 10: chaos over many instances, 20 SIGKILLs during 100 lifecycles, two replicas
on PostgreSQL sharing 200 lifecycles with one killed midway, and schemathesis at depth; and
issue 13's operations state machine (random create/start/stop/delete, concurrent and repeated,
`tests/reliability/operations_model.py`) for >= 500 steps per database, written to its own
section. The simulator runs as a separate process (time scale 0.01).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.reliability import scenarios
from tests.reliability.harness import Report

from bench.common import machine, simulator_process, today, write_section


def verdict(report: Report) -> str:
    problems = report.problems()
    return "all promises kept" if not problems else "BROKEN: " + "; ".join(problems)


def api_statuses(report: Report) -> str:
    return ", ".join(f"{code}: {count}" for code, count in sorted(report.statuses.items()))


def run_chaos(args: argparse.Namespace, work: Path) -> tuple[str, str]:
    with simulator_process(0.01) as sim:
        report = asyncio.run(scenarios.chaos(sim, work, args.chaos_n, timeout=900))
    faults = ", ".join(f"{k}: {v}" for k, v in report.faults_seen().items())
    row = (
        f"| chaos | {report.n} | {report.seconds:.0f} s | upstream faults answered: {faults} "
        f"({report.extra.get('rate_limit_bursts')} bursts of 3 429s); webhook deliveries "
        f"{report.deliveries}, accepted {report.extra.get('accepted_deliveries')}; API answers "
        f"{api_statuses(report)} | {verdict(report)} |"
    )
    return "chaos", row


def run_crashes(args: argparse.Namespace, work: Path) -> tuple[str, str]:
    with simulator_process(0.01) as sim:
        report = asyncio.run(scenarios.crashes(sim, work, args.crash_n, args.kills, timeout=900))
    row = (
        f"| crashes | {report.n} create→running→delete | {report.seconds:.0f} s | "
        f"{report.extra.get('kills')} SIGKILLs + restarts; Novita instances "
        f"{report.extra.get('upstream_instances')}, duplicates {report.duplicates}, orphans "
        f"{len(report.orphans)}; deliveries {report.deliveries}; API answers "
        f"{api_statuses(report)}, connection errors {report.connection_errors} | "
        f"{verdict(report)} |"
    )
    return "crashes", row


def run_replicas(args: argparse.Namespace, work: Path) -> tuple[str, str]:
    from bench.common import database

    with simulator_process(0.01) as sim, database("postgresql") as url:
        report = asyncio.run(scenarios.replicas(sim, work, args.replica_n, url, timeout=900))
    row = (
        f"| replicas (PostgreSQL) | {report.n} | {report.seconds:.0f} s | replica 2 SIGKILLed "
        f"after {report.extra.get('killed_at_requests')} creates; Novita instances "
        f"{report.extra.get('upstream_instances')}, duplicates {report.duplicates}, orphans "
        f"{len(report.orphans)}; API answers {api_statuses(report)} | {verdict(report)} |"
    )
    return "replicas", row


def run_fuzzing(args: argparse.Namespace, work: Path) -> tuple[str, str]:
    from tests.fixtures.service import ServiceProcess, service_env
    from tests.reliability.fuzzing import fuzz

    with simulator_process(0.01) as sim:
        env = service_env(sim.base_url, f"sqlite+aiosqlite:///{work}/fuzz.db")
        service = ServiceProcess(env, work / "fuzz.log").start()
        began = time.monotonic()
        try:
            report = fuzz(service.base_url, args.fuzz_examples)
        finally:
            service.stop()
    seconds = time.monotonic() - began
    statuses = ", ".join(f"{k}: {v}" for k, v in sorted(report.statuses.items()))
    problems = report.problems()
    row = (
        f"| fuzzing (schemathesis) | {report.total} cases ({args.fuzz_examples} per operation "
        f"and mode) | {seconds:.0f} s | statuses {statuses} | "
        f"{'no 5xx, no response off the schema' if not problems else '; '.join(problems)} |"
    )
    return "fuzzing", row


def run_operations(args: argparse.Namespace, work: Path) -> tuple[str, str]:
    """One row per database: the state machine for `--steps` steps, violations counted."""
    from tests.reliability.operations_model import OperationsReport

    from bench.common import database

    rows = []
    for kind in args.ops_databases.split(","):
        folder = work / kind
        folder.mkdir()
        with simulator_process(0.01) as sim, database(kind) as url:
            report: OperationsReport = scenarios.operations(
                sim, folder, args.steps, database_url=url, database=kind,
                step_count=args.step_count, seed=args.seed,
                progress=lambda text, kind=kind: print(f"[operations {kind}] {text}",
                                                       file=sys.stderr, flush=True),
            )  # fmt: skip
        if report.problems():
            log = work / f"operations-{kind}-violations.txt"
            log.write_text("\n".join(report.problems()))
            print("\n".join(report.problems()[:80]), file=sys.stderr)
        rows.append(operations_row(kind, report))
    return "operations", "\n".join(rows)


def operations_row(kind: str, report: Any) -> str:
    answers = ", ".join(f"{k}: {v}" for k, v in sorted(report.answers.items()))
    outcomes = ", ".join(f"{k} {v}" for k, v in sorted(report.outcomes.items()))
    reasons = "; ".join(f"{k} ({v})" for k, v in sorted(report.reasons.items())) or "none"
    waits = sorted(report.quiescence_seconds) or [0.0]
    floor = report.live_floor_ms or (float("nan"), float("nan"))
    violations = sum(1 for v in report.problems() if "steps of that example" not in v)
    verdict_text = "violations 0" if not violations else f"BROKEN: {violations} violations"
    name = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}.get(kind, kind)
    return (
        f"| {name} | {report.steps} steps in {report.examples} examples | {report.seconds:.0f} s "
        f"| {report.instances} instances, {report.requests} requests ({answers}); accepted "
        f"requests by recorded outcome: {outcomes} (reasons: {reasons}); "
        f"{report.terminal_changes} terminal changes, "
        f"{report.deliveries} webhook deliveries; {report.novita_instances} Novita instances; "
        f"quiescence after each example p50 {waits[len(waits) // 2]:.1f} s, max "
        f"{waits[-1]:.1f} s; idle `/health/live` p50 {floor[0]:.1f} ms, p99 {floor[1]:.1f} ms "
        f"| {verdict_text} |"
    )


RUNNERS: dict[str, Any] = {
    "chaos": run_chaos,
    "crashes": run_crashes,
    "replicas": run_replicas,
    "fuzzing": run_fuzzing,
    "operations": run_operations,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--only", default=",".join(RUNNERS))
    parser.add_argument("--chaos-n", type=int, default=200)
    parser.add_argument("--crash-n", type=int, default=100)
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--replica-n", type=int, default=200)
    parser.add_argument("--fuzz-examples", type=int, default=100)
    parser.add_argument("--steps", type=int, default=500, help="operations: steps per database")
    parser.add_argument("--step-count", type=int, default=25, help="operations: steps/example")
    parser.add_argument("--seed", type=int, default=21, help="operations: hypothesis seed")
    parser.add_argument("--ops-databases", default="sqlite,postgresql")
    parser.add_argument("--write-docs", action="store_true")
    args = parser.parse_args()
    if args.steps < 1:
        raise SystemExit("--steps must be positive")
    rows = []
    operations_rows = ""
    with tempfile.TemporaryDirectory(prefix="nm-reliability-") as folder:
        for name in args.only.split(","):
            work = Path(folder) / name
            work.mkdir()
            _, row = RUNNERS[name](args, work)
            print(row, flush=True)
            if name == "operations":
                operations_rows = row
            else:
                rows.append(row)
    command = " ".join(["python -m bench.reliability", *sys.argv[1:]])
    if operations_rows:
        write_operations(args, command, operations_rows)
    if not rows:
        return
    text = f"""## Reliability at full size: chaos, crashes, replicas, fuzzing

Command: `{command}`
Machine: {machine()}. Date: {today()}.
The scenarios of `tests/reliability/` (CI runs them small), the simulator as a separate process
at time scale 0.01, the service as child processes. Chaos: every upstream endpoint answers 500
20% of the time and hangs past the 1 s `REQUEST_TIMEOUT` 2% of the time, plus bursts of three
429s with `Retry-After: 0.5` every 3 s; the webhook receiver answers 500 to half the deliveries
(`WEBHOOK_MAX_RETRIES=16`, since 3 retries would leave 1 event in 16 undelivered); API answers
other than 502/503 in the 5xx range count as broken.

| scenario | N | time | what happened | verdict |
|---|---|---|---|---|
{chr(10).join(rows)}
"""
    print(text)
    if args.write_docs:
        write_section("reliability", text)
        print("updated docs/benchmarks.md", file=sys.stderr)


def write_operations(args: argparse.Namespace, command: str, rows: str) -> None:
    text = f"""## Reliability: random operation requests (issue 13's invariants)

Command: `{command}`
Machine: {machine()}. Date: {today()}.
The hypothesis state machine of `tests/reliability/operations_model.py` (CI runs it for 80
steps): seeded ({args.seed}), examples of up to {args.step_count} steps, no shrinking. Steps:
create (alone, or waiting until it runs), start, stop, delete on a random instance of the
example, bursts of 2-4 concurrent operations on one instance, stop-then-delete on 1-6 instances
in parallel (optionally once they rest), stop-then-start restarts on 1-4, settle (wait until an
instance rests) and short waits. The service is one process
(fast test timings, `INSTANCE_STARTUP_TIMEOUT=600`), the simulator another (time scale 0.01),
the webhook receiver always answers 200. After each example, once quiescent (bounded 60 s),
every invariant is checked: (a) every 202 took effect or is recorded superseded/refused with a
reason, a request that joined the one before it shares its outcome, and the final state (row
and Novita) agrees with the last request that succeeded; (b)
every live Novita instance's `NOVITA_MANAGER_ID` belongs to a live row pointing at it, at most
one per row; (c) every change into running/failed/stopped/deleted in `instance_events` has
exactly one webhook delivery of that type, delivered and received. A violation is one broken
statement about one request or instance. The idle `/health/live` latency is the floor of this
machine at the time of the run.

| database | steps | time | what happened | verdict |
|---|---|---|---|---|
{rows}
"""
    print(text)
    if args.write_docs:
        write_section("reliability-operations", text)
        print("updated docs/benchmarks.md (operations)", file=sys.stderr)


if __name__ == "__main__":
    main()
