"""The reclaim reading and the recovery policy (domain/recovery.py), without I/O."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from novita_manager.domain.recovery import (
    OnReclaim,
    RecoveryPolicy,
    Verdict,
    backoff_seconds,
    plan_recovery,
    spot_signal,
)

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


def policy(mode: OnReclaim = OnReclaim.RESTART, max_recoveries: int = 3) -> RecoveryPolicy:
    return RecoveryPolicy(mode, max_recoveries, backoff_base=60.0, backoff_max=600.0)


def test_a_running_instance_without_reclaim_fields_says_nothing() -> None:
    signal = spot_signal({"status": "running", "spotStatus": "running", "spotReclaimTime": None})
    assert (signal.noticed, signal.reclaimed, signal.reclaim_at) == (False, False, None)
    assert spot_signal(None).spot_status is None


def test_a_notice_carries_the_reclaim_time() -> None:
    at = (NOW + timedelta(minutes=2)).isoformat()
    signal = spot_signal({"status": "running", "spotStatus": "notified", "spotReclaimTime": at})
    assert signal.noticed
    assert not signal.reclaimed
    assert signal.reclaim_at == NOW + timedelta(minutes=2)
    assert spot_signal({"status": "stopping", "spotStatus": "reclaiming"}).noticed


@pytest.mark.parametrize(
    "observation",
    [
        {"status": "exited", "spotStatus": "terminated", "spotReclaimTime": NOW.isoformat()},
        {"status": "exited", "spotStatus": "", "spotReclaimTime": NOW.isoformat()},
        {"status": "exited", "spotStatus": "terminated", "spotReclaimTime": None},
    ],
)
def test_exited_with_a_reclaim_time_or_terminated_is_reclaimed(observation: dict) -> None:
    signal = spot_signal(observation)
    assert signal.reclaimed
    assert not signal.noticed


def test_a_normal_stop_is_not_a_reclaim() -> None:
    signal = spot_signal({"status": "exited", "spotStatus": "running", "spotReclaimTime": "0"})
    assert not signal.reclaimed
    assert signal.reclaim_at is None


def test_policy_none_rests() -> None:
    plan = plan_recovery(policy(OnReclaim.NONE), 0, None, NOW)
    assert plan.verdict is Verdict.REST
    assert plan.mode is None


@pytest.mark.parametrize("mode", [OnReclaim.RESTART, OnReclaim.MIGRATE, OnReclaim.RECREATE])
def test_the_first_recovery_starts_at_once_with_the_policy_mode(mode: OnReclaim) -> None:
    plan = plan_recovery(policy(mode), 0, None, NOW)
    assert (plan.verdict, plan.mode, plan.not_before, plan.number) == (
        Verdict.RECOVER,
        mode,
        NOW,
        1,
    )
    assert mode.value in plan.reason


def test_later_recoveries_back_off_from_the_previous_start() -> None:
    last = NOW - timedelta(seconds=10)
    second = plan_recovery(policy(), 1, last, NOW)
    assert second.not_before == last + timedelta(seconds=60)
    assert second.number == 2
    third = plan_recovery(policy(), 2, last, NOW)
    assert third.not_before == last + timedelta(seconds=120)
    # long after the previous recovery: no wait
    assert plan_recovery(policy(), 2, NOW - timedelta(hours=5), NOW).not_before == NOW


def test_max_recoveries_gives_up_with_the_count_named() -> None:
    plan = plan_recovery(policy(max_recoveries=2), 2, NOW, NOW)
    assert plan.verdict is Verdict.GIVE_UP
    assert "maxRecoveries 2" in plan.reason
    assert plan_recovery(policy(max_recoveries=0), 0, None, NOW).verdict is Verdict.GIVE_UP


@given(st.integers(min_value=0, max_value=50))
def test_backoff_is_capped_and_never_shrinks(recoveries: int) -> None:
    p = policy()
    delay = backoff_seconds(p, recoveries)
    assert 0 <= delay <= p.backoff_max
    assert backoff_seconds(p, recoveries + 1) >= delay
