"""The public shape of a risk flag, in the customer profile and in every score."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

RiskFlagName = Literal["spend_spike", "refund_spike"]


class RiskFlagRead(BaseModel):
    flag: RiskFlagName = Field(
        description="spend_spike: spend in the recent window far above the customer's usual; "
        "refund_spike: refunds per order in the window far above their earlier rate."
    )
    reason: str = Field(
        description="Why, in words with the numbers, e.g. 'spent 1,250.00 USD in the last 30 "
        "days, 8.3 times their usual 150.00 per 30 days over the previous 365 days'."
    )
    window_days: int = Field(description="The recent window: the last this-many days (UTC).")
    history_days: int = Field(
        description="Days of earlier history the usual value is read from: from the customer's "
        "first order to the window, at most CLV_RISK_HISTORY_DAYS (0: no earlier order)."
    )
    recent: float = Field(
        description="The window's value: spend (shop currency) for spend_spike, refunds per "
        "order (orders counted as at least 1) for refund_spike."
    )
    usual: float = Field(
        description="The customer's usual value: spend per window length, or refunds per order, "
        "over their earlier history."
    )
    ratio: float | None = Field(
        description="recent / usual; null when usual is 0 (nothing spent or refunded before)."
    )
