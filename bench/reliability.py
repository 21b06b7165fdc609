"""Reliability at full size: the scenarios of tests/reliability run big, results to the docs.

Usage: python -m bench.reliability [--only chaos,crashes,replicas,fuzzing]
       [--chaos-n 200] [--crash-n 100] [--kills 20] [--replica-n 200] [--fuzz-examples 100]
       [--write-docs]

The same code as the CI tests (`tests/reliability/scenarios.py`, `fuzzing.py`), with the
sizes of issue 10: chaos over many instances, 20 SIGKILLs during 100 lifecycles, two replicas
on PostgreSQL sharing 200 lifecycles with one killed midway, and schemathesis at depth.
The simulator runs as a separate process (time scale 0.01).
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


RUNNERS: dict[str, Any] = {
    "chaos": run_chaos,
    "crashes": run_crashes,
    "replicas": run_replicas,
    "fuzzing": run_fuzzing,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--only", default=",".join(RUNNERS))
    parser.add_argument("--chaos-n", type=int, default=200)
    parser.add_argument("--crash-n", type=int, default=100)
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--replica-n", type=int, default=200)
    parser.add_argument("--fuzz-examples", type=int, default=100)
    parser.add_argument("--write-docs", action="store_true")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="nm-reliability-") as folder:
        for name in args.only.split(","):
            work = Path(folder) / name
            work.mkdir()
            _, row = RUNNERS[name](args, work)
            print(row, flush=True)
            rows.append(row)
    command = " ".join(["python -m bench.reliability", *sys.argv[1:]])
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


if __name__ == "__main__":
    main()
