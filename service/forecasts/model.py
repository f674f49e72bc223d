"""The forecast itself: existing customers bottom up (``existing``), customers not acquired yet
from their time series (``newcomers``), the shop's rhythm and season (``rhythm``), summed into
calendar periods (``periods``), with intervals by simulation.

Intervals (80%: the 10th and 90th percentiles of ``simulations`` simulated futures):
- existing customers: per period, a normal draw with the bottom-up mean and the compound-Poisson
  variance summed over customers, times the overdispersion the shop's own weeks show
  (``rhythm.overdispersion``); periods are drawn independently;
- customers not acquired yet: the ETS model's simulated paths of weekly acquisitions, each
  turned into first orders and their repeat orders, so a path's weeks move together;
- the total: the two added path by path, then its percentiles (not the sum of the parts').
The expected values are the point forecasts (bottom-up mean plus the ETS mean), which the
simulated mean matches up to sampling noise and the flooring of negative paths at 0.

A yearly season (``rhythm.seasonal_index``, two years of history or more) multiplies the
existing customers' and the repeat orders day by day; the weekday profile moves orders between
the days of each week without changing its total.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.signal import fftconvolve

from service.forecasts.existing import (
    DailyPart,
    ScoredCustomers,
    existing_daily,
    repeat_curve,
)
from service.forecasts.history import ShopHistory
from service.forecasts.newcomers import forecast_acquisitions
from service.forecasts.periods import Granularity, Periods, day_date, periods
from service.forecasts.rhythm import (
    overdispersion,
    seasonal_index,
    spread_by_weekday,
    weekday_weights,
)
from service.ml.btyd.base import PurchaseCountFitter

QUANTILES = (0.1, 0.9)
SIMULATIONS = 1_000


@dataclass(frozen=True)
class Inputs:
    """Everything a forecast reads: the customers with an order and their category mix, the
    champion's BTYD curve and population order value, and the shop's history, which ends on the
    day before the forecast's first day."""

    customers: ScoredCustomers
    fitter: PurchaseCountFitter
    population_order_value: float
    history: ShopHistory
    categories: list[str]  # the columns of customers.shares
    new_shares: np.ndarray  # (k,) the shop's category mix, for customers not acquired yet
    new_units_per_order: float
    scored_horizon_days: int  # past it, the existing customers' part is extrapolated
    level_error: float = 0.0  # the served model's |aggregate revenue error| when it was chosen


def forecast(
    inputs: Inputs,
    *,
    days: int,
    granularity: Granularity,
    by_category: bool = False,
    simulations: int = SIMULATIONS,
    seed: int = 0,
) -> dict[str, Any]:
    """The forecast's body: per period and over the whole horizon, expected revenue and orders
    with 80% intervals, split into existing and new customers (and by category when asked)."""
    history = inputs.history
    first_day = history.last_day + 1
    existing = _adjusted(
        existing_daily(inputs.customers, inputs.fitter, days, history.order_value_cv2),
        history,
        first_day,
    )
    acquisitions = forecast_acquisitions(
        history.weekly(history.acquisitions),
        history.weekly(history.first_revenue),
        -(-days // 7),
        simulations,
        seed,
    )
    season = _season_by_day(history, days)
    weights = weekday_weights(history)
    repeats = repeat_curve(inputs.fitter, days)

    def daily(weekly: np.ndarray) -> np.ndarray:  # (weeks, ...) -> (days, ...) by the rhythm
        return spread_by_weekday(np.repeat(weekly / 7, 7, axis=0)[:days], first_day, weights)

    new_first = daily(acquisitions.mean)
    new_first_paths = daily(acquisitions.paths)
    new_repeat = fftconvolve(new_first, repeats)[:days] * season
    new_repeat_paths = fftconvolve(new_first_paths, repeats[:, None], axes=0)[:days]
    new_repeat_paths *= season[:, None]
    value = inputs.population_order_value
    new = {
        "orders": (new_first + new_repeat, new_first_paths + new_repeat_paths),
        "revenue": (
            new_first * acquisitions.first_order_value + new_repeat * value,
            new_first_paths * acquisitions.first_order_value + new_repeat_paths * value,
        ),
    }
    span = periods(first_day, days, granularity)
    rng = np.random.default_rng(seed + 1)
    level = _level_factors(inputs.level_error, simulations, rng)
    figures: dict[str, dict[str, np.ndarray]] = {}
    for measure in ("orders", "revenue"):
        mean = span.sum(getattr(existing, measure))
        spread = np.sqrt(span.sum(getattr(existing, f"{measure}_variance")))
        drawn = rng.normal(mean[:, None], spread[:, None], (len(span), simulations))
        drawn = np.maximum(drawn, 0) * level[None, :]
        new_mean, new_paths = span.sum(new[measure][0]), span.sum(new[measure][1])
        figures[measure] = {
            "existing": mean,
            "existing_paths": drawn,
            "new": new_mean,
            "new_paths": new_paths,
        }
    body: dict[str, Any] = {
        "first_day": day_date(first_day).isoformat(),
        "last_day": day_date(first_day + days - 1).isoformat(),
        "horizon_days": days,
        "granularity": granularity,
        "periods": _periods(span, figures, first_day, inputs.scored_horizon_days),
        "total": _figures(figures, slice(None), whole=True),
        "method": _method(inputs, acquisitions.model, acquisitions.first_order_value, simulations),
        "customers": {
            "existing": len(inputs.customers),
            "acquisitions_per_week_recent": round(
                float(history.weekly(history.acquisitions, 13).mean()), 3
            )
            if history.weeks()
            else 0.0,
        },
        "categories": _categories(inputs, existing, new, span) if by_category else None,
    }
    body["method"]["seed"] = seed
    return body


def _adjusted(part: DailyPart, history: ShopHistory, first_day: int) -> DailyPart:
    """The bottom-up days with the season applied and redistributed by the weekday profile,
    variances widened by the overdispersion."""
    season = _season_by_day(history, len(part.orders))
    weights = weekday_weights(history)
    orders_noise, revenue_noise = overdispersion(history)

    def shaped(values: np.ndarray) -> np.ndarray:
        if values.ndim == 1:
            return spread_by_weekday(values * season, first_day, weights)
        return spread_by_weekday((values * season).T, first_day, weights).T

    return DailyPart(
        orders=shaped(part.orders),
        revenue=shaped(part.revenue),
        orders_variance=shaped(part.orders_variance) * orders_noise,
        revenue_variance=shaped(part.revenue_variance) * revenue_noise,
        category_revenue=shaped(part.category_revenue),
        category_units=shaped(part.category_units),
    )


def _level_factors(error: float, simulations: int, rng: np.random.Generator) -> np.ndarray:
    """(simulations,) one multiplier of the existing customers' part per simulated future,
    lognormal with mean 1 and a log-scale spread of the served model's own aggregate error on
    its time-later selection window: a model that missed the shop's total by 20% there may miss
    it by as much here, in every period of a future at once (which per-customer noise, however
    widened, cannot say)."""
    sigma = min(abs(error), 1.0)
    found: np.ndarray = np.exp(rng.normal(-(sigma**2) / 2, sigma, simulations))
    return found


def _season_by_day(history: ShopHistory, days: int) -> np.ndarray:
    index = seasonal_index(history)
    if index is None:
        return np.ones(days)
    found: np.ndarray = index[(np.arange(days) // 7) % len(index)]
    return found


def _band(expected: float, paths: np.ndarray) -> dict[str, float]:
    low, high = np.quantile(paths, QUANTILES)
    return {
        "expected": round(float(expected), 4),
        "p10": round(float(low), 4),
        "p90": round(float(high), 4),
    }


def _figures(
    figures: dict[str, dict[str, np.ndarray]], rows: slice | int, *, whole: bool = False
) -> dict[str, Any]:
    """Bands of the total and of each part, for one period (``rows``) or summed over all."""
    out: dict[str, Any] = {"existing_customers": {}, "new_customers": {}}
    for measure, f in figures.items():

        def pick(values: np.ndarray) -> np.ndarray:
            chosen = values[rows]
            return np.asarray(chosen.sum(axis=0) if whole else chosen)

        existing, new = pick(f["existing"]), pick(f["new"])
        existing_paths, new_paths = pick(f["existing_paths"]), pick(f["new_paths"])
        out[measure] = _band(float(existing + new), existing_paths + new_paths)
        out["existing_customers"][measure] = _band(float(existing), existing_paths)
        out["new_customers"][measure] = _band(float(new), new_paths)
    return out


def _periods(
    span: Periods,
    figures: dict[str, dict[str, np.ndarray]],
    first_day: int,
    scored_horizon_days: int,
) -> list[dict[str, Any]]:
    counts = span.days()
    extrapolated_from = day_date(first_day + scored_horizon_days)
    return [
        {
            "start": start.isoformat(),
            "end": end.isoformat(),
            "days": int(counts[i]),
            "extrapolated": end >= extrapolated_from,
            **_figures(figures, i),
        }
        for i, (start, end) in enumerate(zip(span.starts, span.ends, strict=True))
    ]


def _categories(
    inputs: Inputs,
    existing: DailyPart,
    new: dict[str, tuple[np.ndarray, np.ndarray]],
    span: Periods,
) -> list[dict[str, Any]]:
    """Expected revenue and units per category and period: each existing customer's by their
    own mix of units bought, new customers' by the shop's mix. Sums over categories equal the
    total expected revenue of each period."""
    new_orders, new_revenue = new["orders"][0], new["revenue"][0]
    revenue = span.sum(existing.category_revenue.T + np.outer(new_revenue, inputs.new_shares))
    new_units = np.outer(new_orders * inputs.new_units_per_order, inputs.new_shares)
    units = span.sum(existing.category_units.T + new_units)
    return [
        {
            "category": name,
            "revenue": round(float(revenue[:, j].sum()), 4),
            "units": round(float(units[:, j].sum()), 4),
            "periods": [
                {
                    "start": start.isoformat(),
                    "revenue": round(float(revenue[i, j]), 4),
                    "units": round(float(units[i, j]), 4),
                }
                for i, start in enumerate(span.starts)
            ],
        }
        for j, name in enumerate(inputs.categories)
    ]


def _method(
    inputs: Inputs, newcomers: dict[str, Any], first_order_value: float, simulations: int
) -> dict[str, Any]:
    orders_noise, revenue_noise = overdispersion(inputs.history)
    return {
        "existing_customers": "stored scores' expected orders and order value, spread along "
        f"each customer's {type(inputs.fitter).__name__} curve",
        "new_customers": {
            **newcomers,
            "first_order_value": round(first_order_value, 4),
            "repeat_order_value": round(inputs.population_order_value, 4),
        },
        "intervals": "80%: 10th and 90th percentiles of simulated futures (compound Poisson over "
        "existing customers widened by the overdispersion, times a level factor per future; ETS "
        "sample paths of acquisitions)",
        "level_error": round(inputs.level_error, 4),
        "simulations": simulations,
        "overdispersion": {"orders": round(orders_noise, 4), "revenue": round(revenue_noise, 4)},
        "yearly_season": seasonal_index(inputs.history) is not None,
        "weekday_profile": [round(float(w), 4) for w in weekday_weights(inputs.history)],
        "order_value_cv2": round(inputs.history.order_value_cv2, 4),
    }
