"""Recency-frequency-monetary summary in the Buy-Till-You-Die sense (Fader, Hardie & Lee 2005).

Purchases are grouped by UTC calendar day, as ``lifetimes.utils.summary_data_from_transaction_data``
does with ``freq="D"``: several orders on one day are one purchase occasion.
- frequency: purchase days after the first one (repeat purchases);
- recency: days from the first to the last purchase day;
- age (``T``): days from the first purchase day to the observation day;
- monetary value: mean spend per repeat purchase day (0 without repeat purchases).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal


@dataclass(frozen=True)
class RfmSummary:
    frequency: int
    recency_days: int
    age_days: int
    monetary_value: Decimal


def rfm_summary(
    purchases: Iterable[tuple[datetime, Decimal]], as_of: datetime
) -> RfmSummary | None:
    """RFM of the purchases at or before ``as_of`` (UTC-aware times); None without purchases."""
    spend_by_day: dict[date, Decimal] = {}
    for occurred_at, amount in purchases:
        if occurred_at <= as_of:
            day = occurred_at.date()
            spend_by_day[day] = spend_by_day.get(day, Decimal(0)) + amount
    if not spend_by_day:
        return None
    days = sorted(spend_by_day)
    first, last = days[0], days[-1]
    repeat_spend = [spend_by_day[day] for day in days[1:]]
    monetary = sum(repeat_spend, Decimal(0)) / len(repeat_spend) if repeat_spend else Decimal(0)
    return RfmSummary(
        frequency=len(repeat_spend),
        recency_days=(last - first).days,
        age_days=(as_of.date() - first).days,
        monetary_value=monetary,
    )
