"""Customers not acquired yet: weekly acquisitions (first orders) forecast by an ETS model, their
first orders at the recent first-order value, and their repeat orders along the BTYD curve of a
customer just acquired.

ETS (``statsmodels``' ``ETSModel``: additive errors, additive damped trend) on the weekly count
of first orders: a damped trend follows a shop that grows or shrinks without extrapolating it
for ever. A yearly season (52 weeks, additive) is added only with two years of whole weeks or
more; a weekly season does not arise at a weekly step (the days inside a week follow the shop's
weekday profile, ``service.forecasts.rhythm``). The first-order value is an ETS level (simple
exponential smoothing) of the weekly mean first-order value: it follows a drifting basket size
without chasing one week.

The first ``WARM_UP_WEEKS`` of a long history are left out of the fit: when the events begin
with an export of a shop that already had customers, every old customer's first order in the
export looks like an acquisition, and those weeks would teach the model a collapse that is not
there.

Uncertainty comes from the fitted model itself: ``simulations`` sample paths of the weekly
acquisitions (``ETSResults.simulate``), so the weeks of a path are correlated as the model says
(a lower level stays lower), which summing weekly variances would miss.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from statsmodels.tools.sm_exceptions import ConvergenceWarning
from statsmodels.tsa.exponential_smoothing.ets import ETSModel

from service.forecasts.rhythm import SEASON_WEEKS

WARM_UP_WEEKS = 8
"""Weeks left out at the start of a history of 26 weeks or more (see the module's docstring)."""
MIN_WEEKS = 8
"""Below this many weeks the model is the recent mean (a level needs a few weeks to settle)."""


@dataclass(frozen=True)
class Acquisitions:
    mean: np.ndarray  # (weeks,) expected first orders in each forecast week
    paths: np.ndarray  # (weeks, simulations) sampled first orders, >= 0
    first_order_value: float
    model: dict[str, Any]  # what was fitted, for the report


def forecast_acquisitions(
    weekly_acquisitions: np.ndarray,
    weekly_first_revenue: np.ndarray,
    weeks: int,
    simulations: int,
    seed: int,
) -> Acquisitions:
    """The next ``weeks`` weeks of acquisitions from the history's whole weeks (oldest first)."""
    rng = np.random.default_rng(seed)
    skip = WARM_UP_WEEKS if len(weekly_acquisitions) >= 26 else 0
    counts, revenue = weekly_acquisitions[skip:], weekly_first_revenue[skip:]
    value = _first_order_value(counts, revenue)
    if len(counts) < MIN_WEEKS:
        level = float(counts.mean()) if len(counts) else 0.0
        paths = rng.poisson(level, size=(weeks, simulations)).astype(np.float64)
        model = {"model": "mean", "weeks_fitted": len(counts), "seasonal": False}
        return Acquisitions(np.full(weeks, level), paths, value, model)
    seasonal = len(counts) >= 2 * SEASON_WEEKS
    fitted, name = _fit(counts, seasonal)
    mean = np.maximum(np.asarray(fitted.forecast(weeks), dtype=float), 0.0)
    simulated = fitted.simulate(weeks, anchor="end", repetitions=simulations, rng=rng)
    paths = np.maximum(np.asarray(simulated, dtype=float).reshape(weeks, simulations), 0.0)
    model = {
        "model": name,
        "weeks_fitted": len(counts),
        "weeks_skipped": skip,
        "seasonal": seasonal,
        "aic": float(fitted.aic) if np.isfinite(fitted.aic) else None,
    }
    return Acquisitions(mean, paths, value, model)


def _fit(counts: np.ndarray, seasonal: bool) -> tuple[Any, str]:
    """The ETS fit, and its name in the usual (error, trend, season) notation."""
    model = ETSModel(
        counts.astype(np.float64),
        error="add",
        trend="add",
        damped_trend=True,
        seasonal="add" if seasonal else None,
        seasonal_periods=SEASON_WEEKS if seasonal else None,
        # with a season, 52 initial states to estimate make the fit take seconds; the
        # heuristic start (two whole years, which a season needs anyway) takes a fraction
        initialization_method="heuristic" if seasonal else "estimated",
    )
    with warnings.catch_warnings():  # a poor optimum is still the best fit there is
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        fitted = model.fit(disp=False)
    return fitted, f"ETS(A,Ad,{'A' if seasonal else 'N'})"


def _first_order_value(counts: np.ndarray, revenue: np.ndarray) -> float:
    """The smoothed level of the weekly mean first-order value (weeks with acquisitions)."""
    bought = counts > 0
    if not bought.any():
        return 0.0
    means = revenue[bought] / counts[bought]
    if len(means) < MIN_WEEKS:
        return float(revenue[bought].sum() / counts[bought].sum())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        fitted = ETSModel(means.astype(np.float64), error="add").fit(disp=False)
    level = float(np.asarray(fitted.forecast(1))[0])
    return level if np.isfinite(level) and level > 0 else float(means.mean())
