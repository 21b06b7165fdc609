"""Retry bookkeeping of processed rows: the columns that record one more failed attempt."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from novita_manager.backoff import backoff_delay

MAX_ERROR_LENGTH = 2000


def truncate_error(error: str, limit: int = MAX_ERROR_LENGTH) -> str:
    return error if len(error) <= limit else error[: limit - 1] + "…"


def retry_values(
    attempts: int, error: str, *, base: float, cap: float, now: datetime
) -> dict[str, Any]:
    """Column values recording one more failed attempt of a row that had `attempts` failures."""
    failed = attempts + 1
    return {
        "attempts": failed,
        "next_attempt_at": now + timedelta(seconds=backoff_delay(failed, base, cap)),
        "last_error": truncate_error(error),
    }
