"""Public schemas of forecasts: what to ask for and what a stored forecast reads as."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

MAX_HORIZON_DAYS = 730
DEFAULT_HORIZON_DAYS = 182


class ForecastRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"horizon_days": 182, "granularity": "week"}]},
    )

    horizon_days: int = Field(
        default=DEFAULT_HORIZON_DAYS,
        ge=1,
        le=MAX_HORIZON_DAYS,
        description="Days forecast, from the day of the newest stored score. Past the "
        "champion's horizon the existing customers' part follows their BTYD curves on "
        "(periods marked extrapolated).",
    )
    granularity: Literal["day", "week", "month"] = Field(
        default="week",
        description="The periods: UTC days, Monday-to-Sunday weeks or calendar months (the "
        "first and last may be partial).",
    )
    by: Literal["category"] | None = Field(
        default=None,
        description="category: also the expected revenue and units of each product category.",
    )


class BandRead(BaseModel):
    expected: float = Field(description="The expected value.")
    p10: float = Field(description="The 10th percentile of the simulated futures.")
    p90: float = Field(description="The 90th percentile: [p10, p90] is the 80% interval.")


class MeasuresRead(BaseModel):
    revenue: BandRead = Field(description="Spend on orders, in the shop currency.")
    orders: BandRead = Field(description="Orders (a customer's day with a purchase).")


class FiguresRead(MeasuresRead):
    existing_customers: MeasuresRead = Field(
        description="Customers with an order before the forecast: bottom up from their scores."
    )
    new_customers: MeasuresRead = Field(
        description="Customers whose first order falls in the forecast: acquisitions (ETS), "
        "their first orders and their repeat orders."
    )


class PeriodRead(FiguresRead):
    start: date = Field(description="The period's first day.")
    end: date = Field(description="Its last day (inclusive).")
    days: int = Field(description="Days in it (the first and last may be partial).")
    extrapolated: bool = Field(
        description="Whether it ends past the champion's horizon from the scores' as_of."
    )


class CategoryPeriodRead(BaseModel):
    start: date = Field(description="The period's first day.")
    revenue: float = Field(description="Expected revenue of the category in the period.")
    units: float = Field(description="Expected units of the category in the period.")


class CategoryRead(BaseModel):
    category: str = Field(description="The product category (uncategorised: none given).")
    revenue: float = Field(description="Expected revenue over the horizon.")
    units: float = Field(description="Expected units over the horizon.")
    periods: list[CategoryPeriodRead] = Field(description="Per period.")


class HistoryPeriodRead(BaseModel):
    start: date = Field(description="The period's first day.")
    end: date = Field(description="Its last day.")
    revenue: float = Field(description="Revenue taken in the period.")
    orders: float = Field(description="Orders in the period.")


class ForecastRead(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": 12,
                    "created_at": "2026-11-28T19:01:47Z",
                    "model_version": "v-20261120-1",
                    "as_of": "2026-11-28T18:55:02Z",
                    "first_day": "2026-11-28",
                    "last_day": "2027-05-28",
                    "horizon_days": 182,
                    "champion_horizon_days": 365,
                    "granularity": "week",
                    "by": None,
                    "customers": {"existing": 4812, "acquisitions_per_week_recent": 61.2},
                    "total": {
                        "revenue": {"expected": 412000.0, "p10": 371000.0, "p90": 455000.0},
                        "orders": {"expected": 6310.0, "p10": 5800.0, "p90": 6840.0},
                        "existing_customers": {"...": "the same bands"},
                        "new_customers": {"...": "the same bands"},
                    },
                    "periods": [{"start": "2026-11-28", "end": "2026-11-29", "days": 2}],
                    "categories": None,
                    "method": {"new_customers": {"model": "ETS(A,Ad,N)"}},
                    "history": [],
                    "seconds": 3.1,
                }
            ]
        }
    )

    id: int = Field(description="The forecast's id (GET /v1/forecasts/{id}).")
    created_at: datetime = Field(description="When it was computed.")
    model_version: str = Field(description="The champion whose BTYD curves shaped it.")
    as_of: datetime = Field(description="The newest stored score's as_of: the forecast's start.")
    first_day: date = Field(description="The first day forecast.")
    last_day: date = Field(description="The last day forecast.")
    horizon_days: int = Field(description="Days forecast.")
    champion_horizon_days: int = Field(description="The champion's horizon.")
    granularity: str = Field(description="day, week or month.")
    by: str | None = Field(description="category when asked for.")
    customers: dict[str, float] = Field(
        description="existing: customers with an order and a stored score; "
        "acquisitions_per_week_recent: first orders a week over the last 13 weeks."
    )
    total: FiguresRead = Field(description="Over the whole horizon.")
    periods: list[PeriodRead] = Field(description="Per period, in order.")
    categories: list[CategoryRead] | None = Field(
        description="With by=category: per category (they sum to the total expected revenue)."
    )
    method: dict[str, Any] = Field(
        description="How it was computed: the curves, the acquisition model fitted, the "
        "intervals' simulation, overdispersion, season and weekday profile."
    )
    history: list[HistoryPeriodRead] = Field(
        description="The periods before it, as they happened (what the chart draws beside it)."
    )
    seconds: float = Field(description="How long computing it took.")
