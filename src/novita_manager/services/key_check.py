"""The start-up check of NOVITA_API_KEY and what Novita said about it.

Why at start-up: a wrong key otherwise shows only as failing creates and a sync that cannot
list, and the operator has to read the tail of a log to learn why. /health reports the outcome.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from novita_manager.domain.payloads import iso
from novita_manager.logging import get_logger
from novita_manager.novita.errors import NovitaUnauthorized
from novita_manager.services.checks import describe
from novita_manager.store.types import utcnow

if TYPE_CHECKING:
    from novita_manager.services.runtime import Runtime

log = get_logger(__name__)


@dataclass
class KeyCheck:
    """What Novita said about NOVITA_API_KEY: `pending` until the start-up check answers, then
    `accepted`, `refused` (401/403) or `unknown` (Novita unreachable: the key is not judged)."""

    state: str = "pending"
    at: datetime | None = None
    status: int | None = None

    def record(self, state: str, status: int | None = None) -> None:
        self.state, self.at, self.status = state, utcnow(), status

    def refused_since(self, last_success: datetime | None) -> bool:
        """Refused, and no upstream call has succeeded since (which would prove it wrong)."""
        if self.state != "refused" or self.at is None:
            return False
        return last_success is None or last_success < self.at

    def to_json(self) -> dict[str, Any]:
        return {"status": self.state, "checkedAt": iso(self.at), "httpStatus": self.status}


async def check_key_once(runtime: Runtime) -> None:
    """The start-up key check: one GET /clusters (with the client's usual retries).

    Why at start-up: a wrong key otherwise shows only as failing creates and a sync that cannot
    list, and the operator has to read the tail of a log to learn why. Never raises: a refusal is
    recorded and logged once (without the key); an unreachable Novita is logged and left to the
    status sync and the health probe.
    """
    key = runtime.key_check
    try:
        await runtime.client.list_clusters()
    except NovitaUnauthorized as error:
        key.record("refused", error.status)
        log.error(
            "novita_key_refused",
            status=error.status,
            reason=error.reason,
            base_url=runtime.settings.novita_api_base_url,
            hint="set NOVITA_API_KEY to a valid key (run `novita-manager doctor`)",
        )
    except Exception as error:
        key.record("unknown")
        log.warning("novita_key_unchecked", error=describe(error)[:300])
    else:
        key.record("accepted")
        log.info("novita_key_accepted")
