"""Whole-system reliability at CI size: chaos, crashes and replicas (see `scenarios.py`).

`bench/reliability.py` runs the same scenarios big and writes the figures to docs/benchmarks.md.
"""

from __future__ import annotations

import pytest

from tests.reliability import scenarios

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

CHAOS_N = 20
CRASH_N, CRASH_KILLS = 30, 6
REPLICA_N = 40


def _assert_kept(report) -> None:
    assert not report.problems(), "\n".join(report.problems())


async def test_chaos_every_instance_runs_and_every_event_is_delivered(simulator, tmp_path):
    report = await scenarios.chaos(simulator, tmp_path, CHAOS_N)
    _assert_kept(report)
    assert report.faults_seen().get("500", 0) > 0, "the 5xx faults fired"
    assert report.faults_seen().get("429", 0) > 0, "the 429 bursts fired"
    assert report.deliveries > report.extra["accepted_deliveries"], "the receiver failed some"


async def test_sigkill_at_random_moments_leaves_no_duplicate_or_orphan(simulator, tmp_path):
    report = await scenarios.crashes(simulator, tmp_path, CRASH_N, CRASH_KILLS)
    _assert_kept(report)
    assert report.extra["kills"] == CRASH_KILLS, "every kill landed during the lifecycles"


@pytest.mark.postgres
async def test_two_replicas_one_killed_midway_all_finish_once(simulator, tmp_path, postgres_url):
    report = await scenarios.replicas(simulator, tmp_path, REPLICA_N, postgres_url)
    _assert_kept(report)
