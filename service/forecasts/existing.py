"""Customers with an order: their expected orders and revenue day by day, bottom up.

Each customer's stored score gives the expected orders over the champion's horizon H
(``expected_orders``, whichever model served it: the network, a BTYD model or the blend) and the
expected order value. The score says how many orders, not when: they are spread over time along
the customer's own BTYD curve, the expected purchases in (0, t] of a customer alive with their
(frequency, recency, age), scaled so that the curve reaches the stored expected orders at H:

    C_i(t) = expected_orders_i * B_i(t) / B_i(H)        B_i = ``expected_if_alive``

P(alive) is a constant factor of the BTYD curve and cancels in the ratio: the level is the served
model's, the shape is the BTYD model's. A customer's orders in day k after the forecast starts
are C_i(o_i + k) - C_i(o_i + k - 1), where o_i is the days between the score's as_of and the
forecast's start (scores are refreshed as events arrive, so o_i is mostly 0). Over the first H
days of a forecast starting at the scores' as_of, the orders add up to the stored expected orders
exactly. Past H the same curve carries on (as ``service.ml.clv_model`` carries the network's
output beyond its trained horizon by the BTYD ratio): those periods are marked extrapolated.

Stored scores + the champion's BTYD parameters are read rather than rescoring everyone: the
scores are what the service serves and keeps current, and the curve needs only three numbers per
customer and four parameters. A customer whose curve is undefined (not finite, or 0 at H) gets
their orders spread evenly over H.

Orders of different customers are taken as independent Poisson counts, revenue as compound
Poisson: var = sum_i mu_i * v_i^2 * (1 + cv^2) with v_i the expected order value and cv the
spread of one customer's order values (``service.forecasts.history``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from service.ml.btyd.base import PurchaseCountFitter

KNOT_DAYS = 7
"""The BTYD curve is computed every 7 days and interpolated linearly between: it is smooth, and
a forecast of a million customers over two years would otherwise evaluate the hypergeometric
function 730 million times."""
CHUNK = 4_096


@dataclass(frozen=True)
class ScoredCustomers:
    """Customers with an order, one row each (arrays of shape (n,)), and their category mix."""

    expected_orders: np.ndarray  # over their score's horizon
    order_value: np.ndarray  # expected value of one order
    horizon_days: np.ndarray  # the score's horizon
    offset_days: np.ndarray  # days from the score's as_of to the forecast's start, >= 0
    frequency: np.ndarray  # BTYD summary at the forecast's start
    recency_days: np.ndarray
    age_days: np.ndarray
    units_per_order: np.ndarray
    shares: np.ndarray  # (n, k) share of their units in each category (rows sum to 1)

    def __len__(self) -> int:
        return len(self.expected_orders)


@dataclass(frozen=True)
class DailyPart:
    """Expected orders and revenue of a group of customers in each forecast day, with their
    variance, and by category (``(k, days)``)."""

    orders: np.ndarray
    revenue: np.ndarray
    orders_variance: np.ndarray
    revenue_variance: np.ndarray
    category_revenue: np.ndarray
    category_units: np.ndarray


def existing_daily(
    customers: ScoredCustomers, fitter: PurchaseCountFitter, days: int, order_value_cv2: float
) -> DailyPart:
    """The customers' expected orders and revenue in each of the ``days`` days of the forecast
    (summed over customers, a chunk at a time: the (customers, days) matrices never exist
    whole)."""
    k = customers.shares.shape[1]
    sums = {name: np.zeros(days) for name in ("orders", "revenue", "revenue_variance")}
    category_revenue, category_units = np.zeros((k, days)), np.zeros((k, days))
    for start in range(0, len(customers), CHUNK):
        part = slice(start, start + CHUNK)
        orders = daily_orders(customers, part, fitter, days)  # (n, days)
        value = customers.order_value[part][:, None]
        revenue = orders * value
        sums["orders"] += orders.sum(axis=0)
        sums["revenue"] += revenue.sum(axis=0)
        sums["revenue_variance"] += (revenue * value).sum(axis=0) * (1 + order_value_cv2)
        shares = customers.shares[part]
        category_revenue += shares.T @ revenue
        category_units += shares.T @ (orders * customers.units_per_order[part][:, None])
    return DailyPart(
        orders=sums["orders"],
        revenue=sums["revenue"],
        orders_variance=sums["orders"].copy(),  # Poisson
        revenue_variance=sums["revenue_variance"],
        category_revenue=category_revenue,
        category_units=category_units,
    )


def daily_orders(
    customers: ScoredCustomers, part: slice, fitter: PurchaseCountFitter, days: int
) -> np.ndarray:
    """(n, days) expected orders of the customers in ``part`` on each forecast day."""
    expected = customers.expected_orders[part]
    horizon = customers.horizon_days[part].astype(np.float64)
    offset = customers.offset_days[part].astype(np.float64)
    summary = (customers.frequency[part], customers.recency_days[part], customers.age_days[part])
    positions = offset[:, None] + np.arange(days + 1)[None, :]  # (n, days + 1), customer time
    end = max(float(positions.max()), float(horizon.max()))
    knots = np.arange(0, end + 2 * KNOT_DAYS, KNOT_DAYS, dtype=np.float64)
    curve = np.stack([_if_alive(fitter, t, summary) for t in knots], axis=1)  # (n, knots)
    with np.errstate(all="ignore"):  # an undefined curve is handled below, not warned about
        shape = _interpolated(curve, positions)
        # the same interpolation at H, so that the curve reaches the stored expected orders there
        at_horizon = _interpolated(curve, horizon[:, None])[:, 0]
        usable = np.isfinite(at_horizon) & (at_horizon > 0) & np.isfinite(shape).all(axis=1)
        scale = np.where(usable, expected / np.where(usable, at_horizon, 1.0), 0.0)
        cumulative = np.where(
            usable[:, None],
            scale[:, None] * np.where(usable[:, None], shape, 0.0),
            expected[:, None] * positions / horizon[:, None],  # even over H where undefined
        )
    return np.maximum(np.diff(cumulative, axis=1), 0.0)


def _interpolated(curve: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """(n, m) each row of ``curve`` (knots every ``KNOT_DAYS``) read at its row of positions."""
    cell = np.minimum((positions // KNOT_DAYS).astype(np.int64), curve.shape[1] - 2)
    fraction = positions / KNOT_DAYS - cell
    rows = np.arange(len(curve))[:, None]
    found: np.ndarray = curve[rows, cell] * (1 - fraction) + curve[rows, cell + 1] * fraction
    return found


def _if_alive(fitter: PurchaseCountFitter, t: float, summary: tuple[np.ndarray, ...]) -> np.ndarray:
    x, t_x, age = summary
    with np.errstate(all="ignore"):
        return np.asarray(fitter.expected_if_alive(t, x, t_x, np.maximum(age, t_x)), dtype=float)


def repeat_curve(fitter: PurchaseCountFitter, days: int) -> np.ndarray:
    """(days,) expected repeat orders of a customer on each day after their first order: the
    BTYD expected purchases of a customer just acquired (x = t_x = T = 0, alive for sure; BG/NBD
    equation (9) and its Pareto/NBD counterpart), differenced."""
    zero = np.zeros(1)
    with np.errstate(all="ignore"):
        cumulative = np.array(
            [
                float(fitter.expected_if_alive(float(t), zero, zero, zero)[0])
                for t in range(days + 1)
            ]
        )
    daily: np.ndarray = np.maximum(np.diff(np.nan_to_num(cumulative)), 0.0)
    return daily
