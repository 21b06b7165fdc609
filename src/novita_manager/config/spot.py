"""Defaults of the spot-life create fields (issue 16): regions, price cap, reclaim policy.

Declared apart from `settings.py` (which is near the module size limit) and mixed into
`Settings`; each default applies when a create request leaves its field out. The defaults keep
today's behaviour: one region, no cap, no fallback, nothing done on a reclaim.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode

# A region code, cluster id or cluster name; or "any".
REGION_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9 _().-]{0,99}$"


class SpotSettings(BaseSettings):
    """The spot-life defaults (see the module docstring)."""

    default_on_reclaim: Literal["none", "restart", "migrate", "recreate"] = Field(
        default="none",
        description="What to do when Novita reclaims a spot instance and the request did not "
        "say (`onReclaim`): `none` (it rests stopped), `restart`, `migrate` (a new node; data "
        "on the system disk is lost) or `recreate` (a new instance from the same request).",
    )
    default_max_recoveries: int = Field(
        default=3,
        ge=0,
        le=100,
        description="Recoveries per instance before the next reclaim fails it (`maxRecoveries`).",
    )
    recovery_backoff: float = Field(
        default=60.0,
        ge=0,
        le=86_400,
        description="Seconds between the start of the first recovery and the second; doubles "
        "after each (the first recovery starts at once).",
    )
    recovery_backoff_max: float = Field(
        default=3600.0, ge=0, le=86_400, description="Cap of the recovery backoff, in seconds."
    )
    default_regions: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated regions tried after the request's region (`regions`), in "
        "order, or `any` for every cluster (cheapest first). Empty: the request's region only.",
    )
    default_max_price_per_hour: float | None = Field(
        default=None,
        gt=0,
        le=10_000,
        description="Cap in USD per hour for the whole instance (`maxPricePerHour`); none "
        "when unset.",
    )
    default_fallback_to_on_demand: bool = Field(
        default=False,
        description="Pay the on-demand price when no spot offer is under the cap "
        "(`fallbackToOnDemand`).",
    )

    @field_validator("default_on_reclaim", mode="before")
    @classmethod
    def _lower_policy(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value

    @field_validator("default_max_price_per_hour", mode="before")
    @classmethod
    def _empty_cap(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("default_regions", mode="before")
    @classmethod
    def _split_regions(cls, value: object) -> object:
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        if isinstance(value, list):
            if any(str(part).lower() == "any" for part in value) and len(value) > 1:
                raise ValueError("`any` cannot be combined with other regions")
            if len(value) > 20:
                raise ValueError("at most 20 regions")
        return value
