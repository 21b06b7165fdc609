"""Schemathesis against the service's OpenAPI, the service as a real server over the simulator."""

from __future__ import annotations

import pytest

from tests.reliability.fuzzing import fuzz

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

EXAMPLES = 40  # per operation and mode (positive; negative where the schema can be broken)


def test_fuzzing_finds_no_5xx_and_no_response_off_the_schema(simulator, make_service, capsys):
    service = make_service(simulator.base_url)
    report = fuzz(service.base_url, EXAMPLES)
    with capsys.disabled():
        print(f"\nschemathesis: {report.total} cases, statuses {dict(report.statuses)}")
    assert report.total >= 500, report.cases
    assert not report.problems(), "\n".join(report.problems())
