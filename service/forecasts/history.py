"""The shop's own past, day by day: what the forecast learns its noise, weekly rhythm, yearly
season and acquisitions from. Read from the stored day aggregates (``customer_days``), so a
forecast re-reads no event.

An order is a customer's day with a purchase, as the BTYD models and the stored scores'
``expected_orders`` count them (two invoices on one day are one order); revenue is what those
purchases came to (refunds are not netted, as in every spend the models predict). An
acquisition is a customer's first order, whether or not they browsed before.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from service.errors import InvalidRequestError
from service.ml.activity import MONEY_UNITS


@dataclass(frozen=True)
class ShopHistory:
    """Daily series from ``first_day`` to ``last_day`` (day numbers, inclusive)."""

    first_day: int
    revenue: np.ndarray  # spend on orders each day
    orders: np.ndarray  # customers with an order each day
    acquisitions: np.ndarray  # customers whose first order it was
    first_revenue: np.ndarray  # what those first orders came to
    order_value_cv2: float  # squared coefficient of variation of one customer's order values

    @property
    def last_day(self) -> int:
        return self.first_day + len(self.revenue) - 1

    def weeks(self) -> int:
        """Whole 7-day blocks in the history, counted back from its last day."""
        return len(self.revenue) // 7

    def weekly(self, daily: np.ndarray, weeks: int | None = None) -> np.ndarray:
        """Sums over the last ``weeks`` (default: every whole) 7-day blocks ending on the last
        day, oldest first."""
        count = self.weeks() if weeks is None else min(weeks, self.weeks())
        if count == 0:
            return np.zeros(0)
        tail = daily[len(daily) - 7 * count :]
        summed: np.ndarray = tail.reshape(count, 7).sum(axis=1)
        return summed


def shop_history(days: pd.DataFrame, last_day: int) -> ShopHistory:
    """The history up to ``last_day`` from day aggregates (customer_id, day, orders,
    spend_units, ...); 422 when nobody ordered by then."""
    ordered = days[(days["day"] <= last_day) & (days["orders"] > 0)]
    if ordered.empty:
        raise InvalidRequestError("no orders yet: there is no history to forecast from")
    day = ordered["day"].to_numpy(np.int64)
    spend = ordered["spend_units"].to_numpy(np.float64) / MONEY_UNITS
    customers = ordered["customer_id"].to_numpy()
    first_day = int(day.min())
    length = last_day - first_day + 1
    position = day - first_day
    first = day == pd.Series(day).groupby(customers).transform("min").to_numpy()
    return ShopHistory(
        first_day=first_day,
        revenue=np.bincount(position, weights=spend, minlength=length),
        orders=np.bincount(position, minlength=length).astype(np.float64),
        acquisitions=np.bincount(position[first], minlength=length).astype(np.float64),
        first_revenue=np.bincount(position[first], weights=spend[first], minlength=length),
        order_value_cv2=_order_value_cv2(customers, spend),
    )


def _order_value_cv2(customers: np.ndarray, spend: np.ndarray) -> float:
    """Pooled within-customer variance of order values over their squared means (customers with
    two orders or more; 1, an exponential's, when there are none): how much one customer's
    orders vary, which the compound-Poisson variance of revenue needs."""
    frame = pd.DataFrame({"customer": customers, "spend": spend})
    grouped = frame.groupby("customer")["spend"].agg(["mean", "var", "count"])
    repeat = grouped[grouped["count"] >= 2]
    if repeat.empty or float((repeat["mean"] ** 2).sum()) <= 0:
        return 1.0
    weights = repeat["count"].to_numpy(np.float64)
    variance = float((repeat["var"].to_numpy() * weights).sum())
    return variance / float((repeat["mean"].to_numpy() ** 2 * weights).sum())
