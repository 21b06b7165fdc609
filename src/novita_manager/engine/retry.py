"""Retry bookkeeping of processed rows, in one place: exponential backoff with jitter."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

MAX_ERROR_LENGTH = 2000


def backoff_delay(attempts: int, base: float, cap: float, jitter: float = 0.2) -> float:
    """Seconds to wait after the `attempts`-th failure (1 → base, 2 → 2·base, …), capped.

    Jitter (± `jitter` as a fraction) spreads rows that failed together, e.g. in an outage.
    """
    exponent = min(max(attempts - 1, 0), 62)
    delay = min(cap, base * 2.0**exponent)
    delay *= 1 + random.uniform(-jitter, jitter)
    return max(0.0, min(cap, delay))


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
