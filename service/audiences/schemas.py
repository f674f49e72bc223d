"""Audiences as the API takes and shows them: filters, definitions, counts, members."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    model_validator,
)

from service.risk.schemas import RiskFlagName
from service.scoring.schemas import ChurnRisk

Segment = Literal[
    "prospect", "champions", "new", "loyal", "potential", "at_risk", "hibernating", "lost"
]
"""``service.ml.segments.SEGMENTS``."""
ProfileValue = StrictStr | StrictBool | StrictInt | StrictFloat
AttributeName = Annotated[str, Field(min_length=1, max_length=64, pattern=r'^[^"\\\x00-\x1f]+$')]
MAX_PAGE = 1000


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Range(_Strict):
    """Both ends optional and inclusive; ``min`` may not exceed ``max``."""

    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        low, high = self.min, self.max
        if low is None and high is None:
            raise ValueError("give min, max or both")
        if low is not None and high is not None and low > high:
            raise ValueError(f"min {low} is above max {high}")
        return self


class TierRange(_Range):
    min: int | None = Field(default=None, ge=1, le=10, description="Lowest value tier, 1-10.")
    max: int | None = Field(default=None, ge=1, le=10, description="Highest value tier, 1-10.")


class MoneyRange(_Range):
    min: float | None = Field(default=None, ge=0, description="Lowest clv, as served.")
    max: float | None = Field(default=None, ge=0, description="Highest clv, as served.")


class ProbabilityRange(_Range):
    min: float | None = Field(default=None, ge=0, le=1, description="Lowest probability.")
    max: float | None = Field(default=None, ge=0, le=1, description="Highest probability.")


class DateWindow(_Strict):
    start: date | None = Field(default=None, description="First day (UTC), inclusive.")
    end: date | None = Field(default=None, description="Last day (UTC), inclusive.")

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.start is None and self.end is None:
            raise ValueError("give start, end or both")
        if self.start is not None and self.end is not None and self.start > self.end:
            raise ValueError(f"start {self.start} is after end {self.end}")
        return self


class AudienceFilters(_Strict):
    """Every filter is optional; those given must all hold (AND). Values are those a score
    serves (``GET /v1/customers/{id}/clv``) for the champion's stored scores."""

    value_tier: TierRange | None = Field(
        default=None, description="Value tier range (deciles of clv; 10 = the top tenth)."
    )
    clv: MoneyRange | None = Field(
        default=None,
        description="clv range in served terms (times CLV_MARGIN, discounted at "
        "CLV_ANNUAL_DISCOUNT_RATE).",
    )
    churn_risk: list[ChurnRisk] | None = Field(
        default=None, min_length=1, description="Any of these churn risk bands."
    )
    purchase_probability: ProbabilityRange | None = Field(
        default=None, description="Purchase probability range."
    )
    next_order_date: DateWindow | None = Field(
        default=None,
        description="expected_next_order_date in this window (customers without one, an order "
        "less likely than not in the horizon, never match).",
    )
    segment: list[Segment] | None = Field(
        default=None, min_length=1, description="Any of these RFM segments."
    )
    risk_flags: list[RiskFlagName] | None = Field(
        default=None, min_length=1, description="Flagged with any of these."
    )
    profile: dict[AttributeName, ProfileValue | list[ProfileValue]] | None = Field(
        default=None,
        min_length=1,
        max_length=10,
        description="Merged-profile attributes: each equal to the value given, or to any of a "
        'list of values ({"region": ["north", "east"]}).',
    )
    cold_start: bool | None = Field(
        default=None, description="true: only customers without an order; false: only buyers."
    )

    @model_validator(mode="after")
    def _values_listed(self) -> Self:
        for name, value in (self.profile or {}).items():
            if isinstance(value, list) and not value:
                raise ValueError(f"profile attribute {name!r}: give at least one value")
        return self


class AudienceCreate(_Strict):
    name: str = Field(min_length=1, max_length=128, description="A unique name.")
    filters: AudienceFilters = Field(
        default_factory=AudienceFilters, description="Who is in it; none: every scored customer."
    )
    notify_above: int | None = Field(
        default=None,
        ge=0,
        description="Send audience.count_crossed to CLV_WEBHOOK_URL when the count rises above "
        "this.",
    )
    notify_below: int | None = Field(
        default=None,
        ge=0,
        description="Send audience.count_crossed when the count falls below this.",
    )


class AudienceCount(BaseModel):
    customers: int = Field(description="Members now.")
    revenue: float = Field(
        description="The sum of the members' clv as served: the value they represent over the "
        "horizon."
    )
    currency: str = Field(description="The shop currency of revenue.")
    model_version: str | None = Field(
        description="The champion whose stored scores were counted; null: no champion yet."
    )
    horizon_days: int | None = Field(description="Its horizon.")
    tiers_known: bool = Field(
        description="False while the champion's rescoring of everyone has not fixed the value "
        "tiers: a value_tier filter matches nobody until it has."
    )
    counted_at: datetime = Field(description="When it was counted.")


class AudienceDefinition(BaseModel):
    id: int = Field(description="The audience's id.")
    name: str = Field(description="Its name.")
    filters: AudienceFilters = Field(description="Who is in it.")
    notify_above: int | None = Field(description="Threshold of audience.count_crossed, rising.")
    notify_below: int | None = Field(description="Threshold of audience.count_crossed, falling.")
    last_count: int | None = Field(
        description="The count when thresholds were last checked (at creation, then by the "
        "workers every CLV_AUDIENCE_CHECK_SECONDS)."
    )
    checked_at: datetime | None = Field(description="When that was.")
    created_at: datetime = Field(description="When it was saved.")


class AudienceRead(AudienceDefinition):
    count: AudienceCount = Field(description="Its members and their value now.")


class AudienceList(BaseModel):
    audiences: list[AudienceDefinition] = Field(
        description="Every saved audience, oldest first (GET one for its count)."
    )


class MemberRead(BaseModel):
    customer_id: str = Field(description="The customer's id.")
    clv: float = Field(description="Expected spend in the horizon, as served.")
    value_tier: int | None = Field(description="Decile of clv (10 = the top tenth).")
    churn_risk: ChurnRisk = Field(description="low, medium or high.")
    churn_probability: float = Field(description="1 - purchase_probability.")
    purchase_probability: float = Field(description="Probability of any purchase in the horizon.")
    expected_next_order_date: date | None = Field(
        description="The day by which an order becomes more likely than not; null beyond the "
        "horizon."
    )
    segment: str | None = Field(description="RFM segment when scored.")
    cold_start: bool = Field(description="No order by as_of.")
    risk_flags: list[str] = Field(description="The names of the customer's risk flags.")
    as_of: datetime = Field(description="The moment the score describes.")


class MemberPage(BaseModel):
    audience_id: int = Field(description="The audience.")
    model_version: str | None = Field(description="The champion whose scores were read.")
    members: list[MemberRead] = Field(description="By customer_id.")
    next_after: str | None = Field(
        description="Pass as `after` for the next page; null on the last one."
    )
