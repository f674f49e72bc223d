"""Backtest (``clv forecast --backtest``): cut the history at T, forecast the weeks after it as
the service would, and compare with what the shop took in those weeks.

At T a model is trained exactly as ``clv train`` would (the forecast's weeks as its horizon), the
customers with an order are scored with it, and the forecast is built from those scores as a
forecast from stored scores is (``service.forecasts.inputs``). T is moved back to the end of the
Sunday at or before it, so the weeks compared are whole calendar weeks.

Reported per measure (revenue, orders): the weekly MAPE, the share of weeks whose actual value
fell inside the 80% interval (its coverage: 0.8 when the interval is honest), the error of the
total over all the weeks, and the same MAPE and total error of a seasonal-naive baseline measured
on the same weeks: each week as the same week a year earlier when the history reaches back that
far, else the mean of the last ``NAIVE_WEEKS`` weeks.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from datetime import time as clock
from typing import Any

import numpy as np
import pandas as pd

from service.errors import InvalidRequestError
from service.forecasts.history import ShopHistory
from service.forecasts.inputs import build_inputs
from service.forecasts.model import SIMULATIONS, forecast
from service.forecasts.periods import day_date, weekday
from service.ml.activity import MONEY_UNITS, day_number
from service.ml.examples import EventLog, Profiles, Sources
from service.ml.metrics import finite
from service.ml.training import Progress, TrainConfig
from service.training.backtest import trained_at

NAIVE_WEEKS = 8
MEASURES = ("revenue", "orders")


def cut_off(as_of: datetime) -> datetime:
    """The end of the Sunday at or before ``as_of`` (UTC)."""
    day = day_number(as_of)
    sunday = day - (int(weekday(np.array([day]))[0]) - 6) % 7
    return datetime.combine(day_date(sunday), clock.max, UTC)


def backtest(
    log: EventLog,
    profiles: Profiles,
    sources: Sources,
    as_of: datetime,
    weeks: int,
    config: TrainConfig,
    *,
    simulations: int = SIMULATIONS,
    progress: Progress | None = None,
    cancelled: Callable[[], bool] | None = None,
) -> dict[str, Any]:
    """The backtest's report (see the module's docstring); 422 when the events end before the
    last week compared."""
    started = time.monotonic()
    report = progress or (lambda stage, done: None)
    cut = cut_off(as_of)
    last_day, days = day_number(cut), 7 * weeks
    events_end = int(log.events["seconds"].max()) // 86400
    if events_end < last_day + days - 2:
        raise InvalidRequestError(
            f"the events end on {day_date(events_end)}: a {weeks}-week forecast backtest at "
            f"{cut.date()} needs them up to {day_date(last_day + days)}"
        )
    config = replace(config, horizon_days=days)
    model, examples = trained_at(log, profiles, sources, cut, config, report, cancelled)
    report("forecasting", 0.95)
    scores = model.predict(examples)
    predictions = scores[["expected_orders", "expected_order_value"]].assign(
        horizon_days=model.horizon_days, offset_days=0
    )
    activity = log.until(cut + timedelta(days=days)).activity()
    inputs = build_inputs(activity, predictions, model, last_day)
    body = forecast(inputs, days=days, granularity="week", simulations=simulations)
    actual = _actual(activity.days, last_day, weeks)
    naive, naive_kind = _naive(inputs.history, weeks)
    rows = _rows(body["periods"], actual, naive)
    found: dict[str, Any] = finite(
        {
            "as_of": cut.isoformat(),
            "weeks": weeks,
            "customers": len(inputs.customers),
            "served": model.report.validation.served,
            "baseline": naive_kind,
            "metrics": {m: _metrics(rows, m) for m in MEASURES},
            "method": body["method"],
            "rows": rows,
            "seconds": round(time.monotonic() - started, 1),
        }
    )
    return found


def _actual(days: pd.DataFrame, last_day: int, weeks: int) -> pd.DataFrame:
    """Per week after ``last_day``: revenue and orders (customer-days with an order) in all, and
    of the customers who had ordered by ``last_day`` (existing) or not (new)."""
    ordered = days[days["orders"] > 0]
    existing = set(ordered.loc[ordered["day"] <= last_day, "customer_id"])
    after = ordered[(ordered["day"] > last_day) & (ordered["day"] <= last_day + 7 * weeks)]
    week = (after["day"].to_numpy() - last_day - 1) // 7
    known = after["customer_id"].isin(existing).to_numpy()
    revenue = after["spend_units"].to_numpy(np.float64) / MONEY_UNITS
    frame = pd.DataFrame(
        {
            "revenue": np.bincount(week, weights=revenue, minlength=weeks),
            "orders": np.bincount(week, minlength=weeks).astype(np.float64),
            "existing_revenue": np.bincount(week, weights=revenue * known, minlength=weeks),
            "existing_orders": np.bincount(week, weights=known.astype(float), minlength=weeks),
        }
    )
    frame["new_revenue"] = frame["revenue"] - frame["existing_revenue"]
    frame["new_orders"] = frame["orders"] - frame["existing_orders"]
    return frame


def _naive(history: ShopHistory, weeks: int) -> tuple[dict[str, np.ndarray], str]:
    """The seasonal-naive forecast of each week and which kind it is."""
    if history.weeks() >= 52 + 0 and weeks <= 52:
        year = {m: history.weekly(getattr(history, m), 52)[:weeks] for m in MEASURES}
        if len(year["revenue"]) == weeks:
            return year, "the same weeks a year earlier"
    recent = {
        m: np.full(weeks, history.weekly(getattr(history, m), NAIVE_WEEKS).mean()) for m in MEASURES
    }
    return recent, f"the mean of the last {min(NAIVE_WEEKS, history.weeks())} weeks"


def _rows(
    periods: list[dict[str, Any]], actual: pd.DataFrame, naive: dict[str, np.ndarray]
) -> list[dict[str, Any]]:
    rows = []
    for i, period in enumerate(periods):
        row: dict[str, Any] = {"start": period["start"]}
        for m in MEASURES:
            row[m] = {
                "actual": round(float(actual[m][i]), 4),
                **period[m],
                "baseline": round(float(naive[m][i]), 4),
                "actual_existing": round(float(actual[f"existing_{m}"][i]), 4),
                "expected_existing": period["existing_customers"][m]["expected"],
                "actual_new": round(float(actual[f"new_{m}"][i]), 4),
                "expected_new": period["new_customers"][m]["expected"],
            }
        rows.append(row)
    return rows


def _metrics(rows: list[dict[str, Any]], measure: str) -> dict[str, float | None]:
    actual = np.array([r[measure]["actual"] for r in rows])
    expected = np.array([r[measure]["expected"] for r in rows])
    naive = np.array([r[measure]["baseline"] for r in rows])
    low = np.array([r[measure]["p10"] for r in rows])
    high = np.array([r[measure]["p90"] for r in rows])
    return {
        "mape": _mape(actual, expected),
        "coverage_80": float(((actual >= low) & (actual <= high)).mean()),
        "total_error": _error(actual.sum(), expected.sum()),
        "baseline_mape": _mape(actual, naive),
        "baseline_total_error": _error(actual.sum(), naive.sum()),
    }


def _mape(actual: np.ndarray, predicted: np.ndarray) -> float | None:
    """Mean |predicted - actual| / actual over the weeks with something actual."""
    some = actual > 0
    return (
        float((np.abs(predicted[some] - actual[some]) / actual[some]).mean())
        if some.any()
        else None
    )


def _error(actual: float, predicted: float) -> float | None:
    return float((predicted - actual) / actual) if actual > 0 else None
