"""Public schemas of the BTYD diagnostics report."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from service.diagnostics.count_models import CountModel
from service.schemas import UtcDatetime

Chart = Literal["frequency_recency", "probability_alive", "calibration"]


class BtydReportRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"holdout_days": 90}]}
    )

    as_of: UtcDatetime | None = Field(
        default=None,
        description="The end of the data the report reads (default: the latest event).",
    )
    holdout_days: int = Field(
        default=90,
        ge=7,
        le=730,
        description="The holdout: the calibration fit ends this many days before as_of and is "
        "judged on the purchases in between; the matrices show expected purchases over a "
        "period this long.",
    )
    count_model: CountModel = Field(
        default=CountModel.bgnbd,
        description="The purchase-count model to fit: bgnbd (BG/NBD, what lifetimes users know "
        "these charts from) or paretonbd (Pareto/NBD).",
    )


class CalibrationRowRead(BaseModel):
    frequency: str = Field(description="Repeat purchase days in the calibration period (7+).")
    customers: int = Field(description="Customers with that frequency.")
    predicted: float = Field(description="Mean purchase days the model expects in the holdout.")
    actual: float = Field(description="Mean purchase days they made in it.")


class MatricesRead(BaseModel):
    frequencies: list[int] = Field(description="Rows: repeat purchase days.")
    recencies: list[float] = Field(description="Columns: days from first to last purchase.")
    age_days: float = Field(description="The customer age every cell assumes (the oldest's).")
    expected_purchases: list[list[float | None]] = Field(
        description="Expected purchase days in the next holdout_days, by frequency (rows) and "
        "recency (columns); null where no customer can be (frequency 0, recency above 0)."
    )
    probability_alive: list[list[float | None]] = Field(
        description="Probability the customer is still active, on the same grid."
    )


class BtydReportRead(BaseModel):
    id: int = Field(description="The stored report.")
    created_at: datetime = Field(description="When it was computed.")
    as_of: datetime = Field(description="The end of the data read.")
    calibration_end: datetime = Field(description="as_of - holdout_days: the calibration cut-off.")
    holdout_days: int = Field(description="The holdout's length.")
    count_model: CountModel = Field(description="The purchase-count model fitted.")
    buyers: int = Field(description="Customers with a purchase by as_of (the matrices' fit).")
    calibration_buyers: int = Field(
        description="Customers with a purchase by the calibration cut-off (the calibration fit)."
    )
    calibration: list[CalibrationRowRead] = Field(
        description="Predicted and actual holdout purchase days, by calibration frequency."
    )
    matrices: MatricesRead = Field(description="Fitted on everything up to as_of.")
    seconds: float = Field(description="How long computing it took.")
