"""When to try again: exponential backoff with jitter, and the Retry-After header.

One module for every retry in the service (Novita calls, pipeline rows, webhook deliveries), so
"the n-th failure waits base·2^(n-1)" means the same everywhere.

Kept by hand rather than taken from tenacity or stamina: those libraries own the retry *loop*,
while here the loops are durable (a row's `next_attempt_at` in the database, or a client loop
that must also pass the circuit breaker and hand long Retry-After waits to the engine). What is
left to share is this arithmetic, a few lines that a library would not make shorter.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

JITTER = 0.2  # ±20 %: spreads rows and calls that failed together while keeping "about 1, 2, 4 s"


def backoff_delay(
    failures: int,
    base: float,
    cap: float = math.inf,
    *,
    jitter: float = JITTER,
    rand: Callable[[], float] = random.random,
) -> float:
    """Seconds to wait after the `failures`-th failure in a row (1 → base, 2 → 2·base, …), capped.

    Jitter scales the nominal delay by 1 ± `jitter`; the result never exceeds `cap`.
    """
    exponent = min(max(failures - 1, 0), 62)
    nominal = min(cap, base * 2.0**exponent)
    delay = nominal * (1 + jitter * (2 * rand() - 1))
    return max(0.0, min(cap, delay))


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from Retry-After: delta-seconds or an HTTP date; None if unusable."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if seconds != seconds:  # NaN
        return None
    return max(0.0, seconds)
