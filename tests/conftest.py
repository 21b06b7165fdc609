"""Shared pytest configuration. Fixtures live in tests/fixtures/ modules, one concern each."""

from __future__ import annotations

import pytest

pytest_plugins = [
    "tests.fixtures.logs",
    "tests.fixtures.simulator",
    "tests.fixtures.postgres",
    "tests.fixtures.database",
    "tests.fixtures.webhook_receiver",
    "tests.fixtures.service",
]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """An empty run is a failure, never a silent success (pytest's exit code 5)."""
    if exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        print("\nERROR: no tests were collected; refusing to report success.")
