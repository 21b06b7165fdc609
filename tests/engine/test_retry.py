"""Retry bookkeeping of rows: attempts counted, next attempt scheduled, errors truncated."""

from __future__ import annotations

from datetime import timedelta

from novita_manager.engine.retry import MAX_ERROR_LENGTH, retry_values
from novita_manager.store.types import utcnow


def test_retry_values_count_schedule_and_truncate() -> None:
    now = utcnow()
    values = retry_values(2, "x" * 10_000, base=1, cap=100, now=now)
    assert values["attempts"] == 3
    assert (
        now + timedelta(seconds=3.19) <= values["next_attempt_at"] <= now + timedelta(seconds=4.81)
    )
    assert len(values["last_error"]) == MAX_ERROR_LENGTH
