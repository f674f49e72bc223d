"""What Online Retail's history says about the level of its holdouts, and what it cannot say.

Every model misses the total spend of protocols R1 and R2 (``bench/real_data.py``) by 23-50%,
low. This splits the BTYD miss into its parts and checks each against what the history shows,
on the protocols' own definitions (``../shared/data/README.md``: an order is a customer's
positive net spend on one UK day; customers with one before the cut-off; holdout spend floored
at 0), with Pareto/NBD + Gamma-Gamma fitted as the service fits them:

- **orders**: the expected orders in the holdout against those placed, and the expected repeat
  orders of the whole history month by month (each customer from their first order, the model's
  unconditional curve) against those placed: a rate that rose through the history would show as
  later months above the curve;
- **order value**: Gamma-Gamma's expected value per order against the holdout's, and the trend of
  a customer's order values within the history (least squares of log value on the day, within
  customers, standard error clustered by customer) with the factor it would carry to the
  holdout;
- **the rest**: the decile MAPE the BTYD forecast would have had if its total had been right
  (scaled to the actual total), which is what the ranking and the spread alone allow.

    .venv/bin/python bench/retail_level.py [--out FILE.json]
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.real_data import DATA, PROTOCOLS, Protocol
from service.ml.btyd.gammagamma import GammaGammaFitter
from service.ml.btyd.paretonbd import ParetoNBDFitter
from service.ml.metrics import evaluate

YEAR = 365.25


def daily_spend() -> pd.DataFrame:
    """Net spend per customer and UK day (the file's times are UK local)."""
    lines = pd.read_csv(DATA, dtype={"CustomerID": str, "InvoiceNo": str})
    lines = lines[lines["CustomerID"].notna()]
    day = pd.to_datetime(lines["InvoiceDate"]).dt.normalize()
    frame = pd.DataFrame(
        {
            "customer": lines["CustomerID"],
            "day": day,
            "value": lines["Quantity"] * lines["UnitPrice"],
        }
    )
    return frame.groupby(["customer", "day"], as_index=False)["value"].sum()


def level(daily: pd.DataFrame, protocol: Protocol) -> dict[str, Any]:
    cutoff = pd.Timestamp(protocol.cutoff.date())  # the first day after the history
    end = cutoff + pd.Timedelta(days=protocol.days)
    orders = daily[(daily["day"] < cutoff) & (daily["value"] > 0)]
    by = orders.groupby("customer")
    first, last, count = by["day"].min(), by["day"].max(), by.size()
    customers = first.index
    x = (count - 1).to_numpy(float)
    t_x = (last - first).dt.days.to_numpy(float)
    age = (cutoff - first).dt.days.to_numpy(float)
    counts = ParetoNBDFitter().fit(x, t_x, age)
    repeat = orders[orders["day"] > orders["customer"].map(first)]
    m = repeat.groupby("customer")["value"].mean().reindex(customers, fill_value=0).to_numpy()
    spend = GammaGammaFitter().fit(x, m)

    later = daily[(daily["day"] >= cutoff) & (daily["day"] < end)]
    later = later[later["customer"].isin(customers)]
    actual = later.groupby("customer")["value"].sum().reindex(customers, fill_value=0).clip(0)
    placed = later[later["value"] > 0]
    expected = counts.conditional_expected_number_of_purchases_up_to_time(
        protocol.days, x, t_x, age
    )
    value = spend.conditional_expected_average_profit(x, m)
    predicted = expected * value

    monthly = _tracking(counts, first, pd.concat([repeat, placed]), end)
    trend, error = _value_trend(orders, cutoff)
    mean_day = orders.groupby("customer")["day"].apply(lambda d: (d - cutoff).dt.days.mean())
    carried = np.exp(trend / YEAR * (protocol.days / 2 - mean_day.reindex(customers).to_numpy()))
    right_total = predicted * actual.sum() / predicted.sum()
    return {
        "customers": len(customers),
        "aggregate_error": float(predicted.sum() / actual.sum() - 1),
        "orders": {"expected": float(expected.sum()), "placed": len(placed)},
        "order_value": {
            "expected": float((expected * value).sum() / expected.sum()),
            "holdout": float(placed["value"].mean()),
            "trend_per_year": trend,
            "trend_standard_error": error,
            "trend_factor": float((expected * value * carried).sum() / (expected * value).sum()),
        },
        "monthly_repeat_orders": monthly,
        "decile_mape": {
            "as_fitted": evaluate(actual.to_numpy(), predicted)["decile_mape"],
            "total_right": evaluate(actual.to_numpy(), right_total)["decile_mape"],
        },
    }


def _tracking(
    counts: ParetoNBDFitter, first: pd.Series, placed: pd.DataFrame, end: pd.Timestamp
) -> dict[str, tuple[float, int]]:
    """Per calendar month: (the model's expected repeat orders of every customer from their
    first order, those placed). A customer just acquired is alive with no repeat order yet:
    their expected orders over t days are ``expected_if_alive(t, 0, 0, 0)``."""
    new = np.zeros(len(first))

    def cumulative(day: pd.Timestamp) -> float:
        t = np.maximum((day - first).dt.days.to_numpy(float), 0)
        return float(counts.expected_if_alive(t, new, new, new).sum())

    months = pd.date_range(first.min().to_period("M").to_timestamp(), end, freq="MS")
    edges = [*months, end]
    result = {}
    for start, stop in itertools.pairwise(edges):
        inside = ((placed["day"] >= start) & (placed["day"] < stop)).sum()
        result[start.strftime("%Y-%m")] = (cumulative(stop) - cumulative(start), int(inside))
    return result


def _value_trend(orders: pd.DataFrame, cutoff: pd.Timestamp) -> tuple[float, float]:
    """(slope of log order value per year within customers, its standard error clustered by
    customer), over customers with two orders or more."""
    frame = orders.assign(t=(orders["day"] - cutoff).dt.days / YEAR, v=np.log(orders["value"]))
    frame = frame[frame.groupby("customer")["t"].transform("size") > 1]
    group = frame.groupby("customer")
    t = frame["t"] - group["t"].transform("mean")
    v = frame["v"] - group["v"].transform("mean")
    slope = float((t * v).sum() / (t**2).sum())
    score = (t * (v - slope * t)).groupby(frame["customer"]).sum()
    return slope, float(np.sqrt((score**2).sum()) / (t**2).sum())


def show(name: str, result: dict[str, Any]) -> None:
    orders, value = result["orders"], result["order_value"]
    print(f"\n{name}: {result['customers']} customers; Pareto/NBD + Gamma-Gamma")
    print(f"  aggregate error {result['aggregate_error']:+.1%}")
    print(
        f"  orders: expected {orders['expected']:.0f}, placed {orders['placed']} "
        f"({orders['expected'] / orders['placed'] - 1:+.1%})"
    )
    print(
        f"  value per order: expected {value['expected']:.0f}, holdout {value['holdout']:.0f} "
        f"({value['expected'] / value['holdout'] - 1:+.1%}); within-customer trend "
        f"{value['trend_per_year']:+.3f} a year (s.e. {value['trend_standard_error']:.3f}), "
        f"carried to the holdout x{value['trend_factor']:.3f}"
    )
    months = result["monthly_repeat_orders"]
    print("  repeat orders by month, placed / expected:")
    print(
        "   "
        + " ".join(f"{m[2:]}:{placed / max(exp, 1e-9):.2f}" for m, (exp, placed) in months.items())
    )
    mape = result["decile_mape"]
    print(
        f"  decile MAPE {mape['as_fitted']:.3f} as fitted, {mape['total_right']:.3f} with the "
        "total set to the actual"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if not DATA.exists():
        raise SystemExit(f"{DATA} is missing")
    daily = daily_spend()
    out = {}
    for protocol in PROTOCOLS:
        out[protocol.name] = level(daily, protocol)
        show(f"Online Retail {protocol.name}", out[protocol.name])
    if args.out:
        args.out.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
