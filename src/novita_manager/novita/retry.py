"""Retry timing: exponential backoff with jitter and `Retry-After` parsing.

The retry loop itself lives in `client.py` as a plain loop rather than tenacity/stamina: whether an
attempt may be repeated depends on more than the exception (a create may be resent only when the
request certainly never left; a long Retry-After is handed to the engine instead of slept on), and
every attempt must also pass the circuit breaker and be logged and counted. Expressed as tenacity
predicates and callbacks that was longer and harder to follow than the loop; these two pure
functions are the part worth testing on their own.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from novita_manager.retry_after import parse_retry_after

JITTER = 0.25  # ±25 %: spreads synchronized retries while keeping "about 1 s, 2 s, 4 s"


def backoff_delay(
    retry: int, base: float, *, jitter: float = JITTER, rand: Callable[[], float] = random.random
) -> float:
    """Delay before retry number `retry` (0-based): base·2^retry, scaled by 1 ± jitter."""
    nominal = base * float(2**retry)
    return max(0.0, nominal * (1 + jitter * (2 * rand() - 1)))


__all__ = ["backoff_delay", "parse_retry_after"]
