"""Fuzz the running service through its own OpenAPI schema with schemathesis.

Every operation gets `examples` generated cases in each mode: positive (valid by the schema) and
negative (violating it). Each response is checked: no 5xx, the body conforms to the documented
schema, the status is one the schema lists. Failures are collected (not raised at the first) so
one run reports every kind of broken response.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import (
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

CHECKS = [not_a_server_error, response_schema_conformance, status_code_conformance]
# Answers that never end (Server-Sent Events): a case would wait for its timeout. Their
# validation is tested in tests/api/test_events_e2e.py.
STREAMS = frozenset({"/api/events"})


@dataclass
class FuzzReport:
    cases: Counter[str] = field(default_factory=Counter)  # by "METHOD /path mode"
    statuses: Counter[int] = field(default_factory=Counter)
    failures: dict[str, list[str]] = field(default_factory=dict)  # check failure → examples
    unsatisfiable: list[str] = field(default_factory=list)  # operation+mode with no cases

    @property
    def total(self) -> int:
        return sum(self.cases.values())

    def problems(self) -> list[str]:
        return [
            f"{kind} ({len(seen)} times), e.g. {seen[0]}" for kind, seen in self.failures.items()
        ]


def fuzz(base_url: str, examples: int, seed: int = 1) -> FuzzReport:
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    report = FuzzReport()
    for result in schema.get_all_operations():
        operation = result.ok()  # type: ignore[union-attr]  # an Err raises: a broken schema
        if operation.path in STREAMS:
            continue
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            _fuzz_operation(operation, mode, base_url, examples, seed, report)
    return report


def _fuzz_operation(operation: Any, mode: GenerationMode, base_url: str, examples: int,
                    seed: int, report: FuzzReport) -> None:  # fmt: skip
    label = f"{operation.method.upper()} {operation.path} {mode.value}"

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=False,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: Any) -> None:
        report.cases[label] += 1
        response = case.call(base_url=base_url, timeout=30)
        report.statuses[response.status_code] += 1
        try:
            case.validate_response(response, checks=CHECKS)
        except BaseExceptionGroup as failure:  # one group per case; keep going to see all
            for item in failure.exceptions:
                kind = f"{label}: {type(item).__name__}: {str(item).splitlines()[0][:160]}"
                sample = f"{case.method} {case.formatted_path} → {response.status_code}"
                report.failures.setdefault(kind, []).append(sample)

    run._hypothesis_internal_use_seed = seed  # type: ignore[attr-defined]
    try:
        run()
    except Unsatisfiable:  # nothing in the schema can be violated (no parameters, no body)
        report.unsatisfiable.append(label)
