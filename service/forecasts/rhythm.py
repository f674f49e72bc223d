"""What the shop's history says beyond each customer's curve: the weekly rhythm (which days
orders fall on), the yearly season (where two years of history show one) and how much more the
weekly totals vary than independent customers' orders would (overdispersion)."""

from __future__ import annotations

import warnings

import numpy as np
from statsmodels.tsa.seasonal import seasonal_decompose

from service.forecasts.history import ShopHistory
from service.forecasts.periods import weekday

RHYTHM_WEEKS = 26
"""The recent weeks the weekday profile is read from: recent enough to follow a change in the
shop's opening days, long enough that one promotion does not shape it."""
SEASON_WEEKS = 52
NOISE_WEEKS = 52
SMOOTHING = 5
"""Weeks in the centred moving average that overdispersion is measured around."""


def weekday_weights(history: ShopHistory) -> np.ndarray:
    """(7,) orders on each weekday (Monday first) over the recent weeks, relative to the mean
    weekday (mean 1); all ones with fewer than four whole weeks of history."""
    weeks = min(history.weeks(), RHYTHM_WEEKS)
    if weeks < 4:
        return np.ones(7)
    orders = history.orders[len(history.orders) - 7 * weeks :]
    days = np.arange(history.last_day - 7 * weeks + 1, history.last_day + 1)
    per_weekday = np.bincount(weekday(days), weights=orders, minlength=7)
    if per_weekday.sum() <= 0:
        return np.ones(7)
    weights: np.ndarray = 7 * per_weekday / per_weekday.sum()
    return weights


def spread_by_weekday(daily: np.ndarray, first_day: int, weights: np.ndarray) -> np.ndarray:
    """``daily`` ((days,) or (days, k)) redistributed inside each 7-day block from ``first_day``
    by the weekday weights: every block keeps its total, so the rhythm moves orders between days
    and never adds or removes any."""
    out = np.array(daily, dtype=np.float64, copy=True)
    day_weights = weights[weekday(np.arange(first_day, first_day + len(daily)))]
    for start in range(0, len(daily), 7):
        block = slice(start, start + 7)
        total_weight = day_weights[block].sum()
        if total_weight <= 0:
            continue
        share = day_weights[block] / total_weight
        out[block] = out[block].sum(axis=0) * (share if out.ndim == 1 else share[:, None])
    return out


def seasonal_index(history: ShopHistory) -> np.ndarray | None:
    """(52,) the yearly multiplicative index of weekly orders for the 52 weeks after the history
    (classical decomposition around a centred moving average, ``statsmodels``), or None with
    fewer than two years of whole weeks (or a week without orders): one year cannot tell a
    season from a trend."""
    weekly = history.weekly(history.orders)
    if len(weekly) < 2 * SEASON_WEEKS or (weekly <= 0).any():
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        seasonal = np.asarray(
            seasonal_decompose(weekly, model="multiplicative", period=SEASON_WEEKS).seasonal
        )
    # The component repeats every 52 weeks: the year after the history is its last 52 values.
    index: np.ndarray = seasonal[len(weekly) - SEASON_WEEKS :]
    normalised: np.ndarray = index / index.mean()
    return normalised


def overdispersion(history: ShopHistory) -> tuple[float, float]:
    """(orders, revenue): the variance of the recent weekly totals around their centred
    ``SMOOTHING``-week moving average over what independent customers would give (Poisson
    orders; compound Poisson revenue with the shop's order-value spread), at least 1. Common
    shocks (weather, promotions, a week's news) move every customer at once; this factor widens
    the bottom-up interval by what the shop's own weeks show. 1 with fewer than 8 weeks."""
    orders = history.weekly(history.orders, NOISE_WEEKS)
    revenue = history.weekly(history.revenue, NOISE_WEEKS)
    if len(orders) < 8:
        return 1.0, 1.0
    kernel = np.ones(SMOOTHING) / SMOOTHING
    smooth_orders = np.convolve(orders, kernel, mode="valid")
    smooth_revenue = np.convolve(revenue, kernel, mode="valid")
    inner = slice(SMOOTHING // 2, len(orders) - SMOOTHING // 2)
    # a residual around a mean that includes it holds (1 - 1/k) of the variance: undo that
    correction = SMOOTHING / (SMOOTHING - 1)
    order_value = np.divide(
        smooth_revenue, smooth_orders, out=np.zeros_like(smooth_revenue), where=smooth_orders > 0
    )
    implied_orders = smooth_orders.sum()
    implied_revenue = (smooth_orders * order_value**2 * (1 + history.order_value_cv2)).sum()
    observed_orders = correction * ((orders[inner] - smooth_orders) ** 2).sum()
    observed_revenue = correction * ((revenue[inner] - smooth_revenue) ** 2).sum()
    return (
        max(1.0, float(observed_orders / implied_orders)) if implied_orders > 0 else 1.0,
        max(1.0, float(observed_revenue / implied_revenue)) if implied_revenue > 0 else 1.0,
    )
