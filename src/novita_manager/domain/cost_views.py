"""The answer of `GET /api/costs` (the instance view's cost fields are in views.py)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from novita_manager.domain.costs import GroupBy


class CostGroupView(BaseModel):
    key: str = Field(
        description="The day (`YYYY-MM-DD`, UTC), the instance id, the product name or the "
        "region, per `groupBy`."
    )
    name: str | None = Field(default=None, description="The instance's name (groupBy=instance).")
    cost: float = Field(description="USD billed within the window.")
    billedSeconds: float = Field(description="Seconds billed within the window.")
    instances: int = Field(description="Instances with billed time in this group.")


class CostTotalView(BaseModel):
    cost: float
    billedSeconds: float
    instances: int


class CostReport(BaseModel):
    from_: str | None = Field(
        alias="from", description="Start of the window (ISO-8601, UTC); null: since the first."
    )
    to: str = Field(description="End of the window (ISO-8601, UTC); at most now.")
    groupBy: GroupBy
    currency: str = Field(default="USD")
    groups: list[CostGroupView] = Field(
        description="Days in order; other groupings by cost, largest first."
    )
    total: CostTotalView
    spendRatePerHour: float = Field(
        description="USD per hour of the instances billed now (what runs now)."
    )

    model_config = {"populate_by_name": True}
