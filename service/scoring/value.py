"""What a served money value means: revenue times the shop's margin, the future part discounted.

Stored scores keep the model's expected revenue (matured accuracy compares them with the revenue
that came; value tiers are deciles of them). Margin and discounting are applied when a score is
served, so changing ``CLV_MARGIN`` or ``CLV_ANNUAL_DISCOUNT_RATE`` needs no rescoring, and one
factor per horizon converts between the two (audiences filter served values on stored columns).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from service.config import Settings
from service.scoring import repository
from service.scoring.models import Score, ScoreHistory
from service.scoring.schemas import ScoreHistoryEntry

DAYS_PER_YEAR = 365.0

PREDICTED_MONEY = ("clv", "p10", "p50", "p90", "btyd_clv")
"""Stored values of spend expected over the horizon: served times margin and discount."""


@dataclass(frozen=True)
class ValueTerms:
    """``CLV_MARGIN`` and ``CLV_ANNUAL_DISCOUNT_RATE``."""

    margin: float = 1.0
    annual_discount_rate: float = 0.0

    @classmethod
    def of(cls, settings: Settings) -> ValueTerms:
        return cls(margin=settings.margin, annual_discount_rate=settings.annual_discount_rate)

    def discount(self, horizon_days: int) -> float:
        """Today's worth of one unit of spend spread evenly over the next ``horizon_days``:
        with r = ln(1 + annual rate) / 365 a day, the mean of e^(-rt) over [0, H],
        (1 - e^(-rH)) / (rH); 1 at a zero rate."""
        rate = math.log1p(self.annual_discount_rate) / DAYS_PER_YEAR
        exponent = rate * horizon_days
        return 1.0 if exponent == 0 else -math.expm1(-exponent) / exponent

    def predicted(self, horizon_days: int) -> float:
        """The factor from a stored prediction (expected revenue over the horizon) to the served
        value: margin times discount."""
        return self.margin * self.discount(horizon_days)

    def factors(self, horizon_days: int) -> dict[str, float]:
        """The factor of each money column of a score: the predicted ones margin times
        discount, the value of one order the margin only."""
        predicted = self.predicted(horizon_days)
        return dict.fromkeys(PREDICTED_MONEY, predicted) | {"expected_order_value": self.margin}

    def historic(self) -> float:
        """The factor from revenue so far to the served historic value: the margin only (past
        spend is not discounted)."""
        return self.margin


def served_numbers(values: Mapping[str, Any], terms: ValueTerms) -> dict[str, float | None]:
    """A stored score's numbers as served (``service.scoring.value``): the predicted money
    values times margin and discount, the order value times the margin, historic revenue as
    ``historic_clv`` (times the margin) and ``total_clv`` = historic + predicted; rounded to four
    decimals. The historic values are None for scores stored before they were kept."""
    factors = terms.factors(int(values["horizon_days"]))
    number: dict[str, float | None] = {
        name: _rounded(values[name], factors.get(name, 1.0))
        for name in repository.NUMBERS
        if name != "historic_revenue"
    }
    historic = _rounded(values["historic_revenue"], terms.historic())
    number["historic_clv"] = historic
    clv = number["clv"]
    number["total_clv"] = None if historic is None or clv is None else round(historic + clv, 4)
    return number


def _rounded(value: float | None, factor: float = 1.0) -> float | None:
    """None and NaN (a customer with one purchase day has no mean gap) are served as null."""
    if value is None or math.isnan(value):
        return None
    return round(float(value) * factor, 4)


def history_entry(row: ScoreHistory | Score, terms: ValueTerms) -> ScoreHistoryEntry:
    """A stored score (current or past) as served, in the terms of ``served_numbers``."""
    values = {name: getattr(row, name) for name in repository.VALUE_COLUMNS}
    return ScoreHistoryEntry.model_validate(values | served_numbers(values, terms))
