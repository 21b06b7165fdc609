"""The doctor's report: one `Check` per question, what the account answered and what the
service does about it, and the run's outcome (which sets the doctor's exit code).

Kept apart from the probes so that the shape of the report (and its JSON, which scripts read) is
one small module, and so that the questions and the service's answers come from one place:
`readings.py` for the open points of Novita's API and `ACCOUNT_CHECKS` below for the facts the
service needs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from novita_manager.novita.readings import READINGS, reading

Status = Literal["ok", "warn", "fail", "skip"]
Outcome = Literal["ok", "failed", "unavailable", "unreachable"]


# ----- what the service does about each point ------------------------------------------------
# The readings (open points of Novita's API) and what the client does about each come from
# `novita/readings.py`, the list the client follows, so the report and the code cannot drift.
# The account checks below are not readings: they are facts the service needs.

ACCOUNT_CHECKS: dict[str, tuple[str, str]] = {
    "key": ("Does Novita accept NOVITA_API_KEY?", "every call sends it; /health says when refused"),
    "clusters": ("Does GET /clusters list clusters?", "regions resolve from it, not a table"),
    "region": ("Does DEFAULT_REGION (or --region) name a cluster?", "used when none is asked"),
    "spot_offers": (
        "Is there a deployable spot offer in the region (billingMethod=spot, clusterId)?",
        "a create without billingMode picks the cheapest deployable spot offer there",
    ),
    "on_demand_offers": (
        "Is there a deployable on-demand offer in the region?",
        "billingMode=onDemand picks the cheapest deployable on-demand offer there",
    ),
    "rate_limit_headers": (
        "Does Novita send X-RateLimit-* or Retry-After headers?",
        "honours Retry-After on 429/503; UPSTREAM_RATE_LIMIT limits it client-side",
    ),
}


def _question(ident: str) -> str:
    if ident in ACCOUNT_CHECKS:
        return ACCOUNT_CHECKS[ident][0]
    try:
        return reading(ident).question
    except KeyError:
        return ""


def service_actions() -> dict[str, str]:
    """What the service does, per check id: readings.py's `client` text for the readings."""
    actions = {ident: action for ident, (_, action) in ACCOUNT_CHECKS.items()}
    actions.update({item.id: item.client for item in READINGS})
    return actions


# ----- the report ----------------------------------------------------------------------------


@dataclass
class Check:
    """One line of the report: a question, what the account answered, what the service does."""

    id: str
    status: Status
    observed: str
    action: str = ""
    readings: dict[str, Any] = field(default_factory=dict)  # SimulatorConfig field -> value
    relied: bool = False  # the service cannot work when this fails
    transient: bool = False  # failed because Novita did not answer properly, not a finding

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "question": _question(self.id),
            "status": self.status,
            "observed": self.observed,
            "service": self.action,
            "readings": self.readings,
            "relied": self.relied,
        }


@dataclass
class Report:
    base_url: str
    region: str
    checks: list[Check] = field(default_factory=list)
    unreachable: str | None = None  # why Novita could not be asked at all
    unavailable: bool = False  # Novita answered, but only with 429/5xx

    @property
    def outcome(self) -> Outcome:
        if self.unreachable is not None:
            return "unavailable" if self.unavailable else "unreachable"
        failed = [check for check in self.checks if check.status == "fail"]
        if any(not check.transient for check in failed):
            return "failed"
        if failed:
            return "unavailable"
        return "ok"

    @property
    def readings(self) -> dict[str, Any]:
        merged: dict[str, Any] = {}
        for check in self.checks:
            merged.update(check.readings)
        return merged

    def check(self, ident: str) -> Check:
        return next(check for check in self.checks if check.id == ident)

    def to_json(self) -> dict[str, Any]:
        return {
            "baseUrl": self.base_url,
            "region": self.region,
            "outcome": self.outcome,
            "unreachable": self.unreachable,
            "readings": self.readings,
            "checks": [check.to_json() for check in self.checks],
        }
