"""Behavioural features of the customer portrait, as of a day, from the activity aggregates.

``behaviour_features`` is vectorised over customers, so the same function serves one customer
now (the API) and every customer at many cut-offs (training). Only the aggregates it is given are
used: callers pass activity at or before the cut-off (see ``service.ml.activity``). Times are in
whole UTC days, the grain of the aggregates; money is in the shop currency.

Every feature is declared in ``BEHAVIOUR_FEATURES`` with a description and a unit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from service.ml.activity import DAY_COUNTERS, MONEY_UNITS

WINDOWS = (7, 30, 90, 365)


@dataclass(frozen=True)
class FeatureDef:
    name: str
    description: str
    unit: str
    group: str


# name | unit | description, under "## group" headings; {w} stands for each of WINDOWS.
_TABLE = """
## purchase history
has_purchased | flag | 1 if the customer has bought anything, else 0.
frequency | days | BTYD frequency: purchase days after the first one.
recency_days | days | BTYD recency: days from the first to the last purchase day.
age_days | days | BTYD T: days from the first purchase day to the cut-off.
monetary_value | currency | BTYD monetary value: mean spend per repeat purchase day.
orders_total | orders | Orders placed.
spend_total | currency | Total spend on orders.
units_total | units | Units of products bought.
average_order_value | currency | Spend per order.
orders_{w}d | orders | Orders in the last {w} days.
spend_{w}d | currency | Spend in the last {w} days.
days_since_last_order | days | Days from the last purchase day to the cut-off (0 without orders).
interpurchase_mean_days | days | Mean gap between consecutive purchase days.
interpurchase_std_days | days | Standard deviation of the gaps between purchase days.
last_gap_days | days | Gap between the last two purchase days.
overdue_ratio | ratio | days_since_last_order / interpurchase_mean_days (0 without a gap).
orders_trend | log ratio | log((orders in the last 90 days + 1) / (orders in the 90 before + 1)).
spend_trend | log ratio | log((spend in the last 90 days + 1) / (spend in the 90 before + 1)).
## refunds
refunds_total | refunds | Refunds received.
refunded_total | currency | Amount refunded.
refund_rate | ratio | Refunds per order.
refunded_share | ratio | Amount refunded / spend.
## browsing
sessions_total | sessions | Sessions started.
sessions_30d | sessions | Sessions in the last 30 days.
views_total | views | Product views.
views_30d | views | Product views in the last 30 days.
carts_total | cart additions | Products added to the cart.
carts_30d | cart additions | Cart additions in the last 30 days.
checkouts_total | checkouts | Checkouts started.
view_to_purchase | ratio | Orders per product view.
cart_to_purchase | ratio | Orders per cart addition.
checkout_abandonment | ratio | Share of started checkouts not followed by an order.
active_days_total | days | Days with any event.
active_days_30d | days | Days with any event in the last 30 days.
days_since_last_visit | days | Days from the last day with any event to the cut-off.
days_since_first_visit | days | Days from the first day with any event to the cut-off.
## calendar
cutoff_season_sin | unitless | Sine of the cut-off's day of the year.
cutoff_season_cos | unitless | Cosine of the cut-off's day of the year.
first_visit_season_sin | unitless | Sine of the first visit's day of the year (cohort season).
first_visit_season_cos | unitless | Cosine of the first visit's day of the year.
"""


def _parse(table: str) -> list[FeatureDef]:
    defs, group = [], ""
    for line in table.strip().splitlines():
        if line.startswith("## "):
            group = line[3:]
            continue
        name, unit, description = (part.strip() for part in line.split("|"))
        for window in WINDOWS if "{w}" in name else (None,):
            defs.append(
                FeatureDef(name.format(w=window), description.format(w=window), unit, group)
            )
    return defs


BEHAVIOUR_FEATURES: list[FeatureDef] = _parse(_TABLE)
BEHAVIOUR_NAMES = [feature.name for feature in BEHAVIOUR_FEATURES]


def _season(day: np.ndarray | int) -> tuple[np.ndarray, np.ndarray]:
    angle = 2 * np.pi * (np.asarray(day, dtype=float) % 365.25) / 365.25
    return np.sin(angle), np.cos(angle)


def _boundaries(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(first, last): where each run of equal values in the sorted ``codes`` starts and ends."""
    change = codes[1:] != codes[:-1]
    first, last = np.ones(len(codes), dtype=bool), np.ones(len(codes), dtype=bool)
    first[1:], last[:-1] = change, change
    return first, last


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator, 0 where the denominator is not positive."""
    out = np.zeros(len(numerator))
    np.divide(numerator, denominator, out=out, where=denominator > 0)
    return out


def behaviour_features(days: pd.DataFrame, as_of_day: int) -> pd.DataFrame:
    """(customers x BEHAVIOUR_FEATURES), indexed by customer_id, sorted.

    ``days``: the day aggregates (customer_id, day, counters) of days <= ``as_of_day``, one row
    per customer and day. Per-customer sums are ``bincount`` over customer codes, not pandas
    group-bys: a group-by costs about the same on millions of rows but has a fixed cost per
    call that dominated the scoring of a worker's batch of 100 customers.
    """
    if days.empty:
        return pd.DataFrame(columns=BEHAVIOUR_NAMES, index=pd.Index([], name="customer_id"))
    code, customers = pd.factorize(days["customer_id"].to_numpy(), sort=True)
    day = days["day"].to_numpy(np.int64)
    order = np.lexsort((day, code))  # by customer, then day
    code, day = code[order], day[order]
    # Sums in float64: exact below 2**53 (900 billion in money), and past it never wrapped
    # around as int64 sums over a customer's days would be.
    counters = {name: days[name].to_numpy(np.float64)[order] for name in DAY_COUNTERS}
    n = len(customers)
    age = as_of_day - day

    def total(values: np.ndarray, inside: np.ndarray | None = None) -> np.ndarray:
        weights = values if inside is None else np.where(inside, values, 0.0)
        return np.bincount(code, weights=weights, minlength=n)

    def window(counter: str, length: int, offset: int = 0) -> np.ndarray:
        return total(counters[counter], (age >= offset) & (age < offset + length))

    money = 1.0 / MONEY_UNITS
    out: dict[str, np.ndarray] = {}
    bought = counters["orders"] > 0
    buyer, bought_day = code[bought], day[bought]
    purchase_days = np.bincount(buyer, minlength=n)
    first, last = _boundaries(buyer)  # each customer's first and last purchase day
    first_day, last_day = np.zeros(n), np.zeros(n)
    first_day[buyer[first]], last_day[buyer[last]] = bought_day[first], bought_day[last]
    first_spend = np.zeros(n)
    first_spend[buyer[first]] = counters["spend_units"][bought][first]
    has = purchase_days > 0

    gap = np.diff(bought_day, prepend=0).astype(np.float64)[~first]  # to the previous one
    gapped = buyer[~first]
    gaps = np.bincount(gapped, minlength=n)
    gap_mean = _ratio(np.bincount(gapped, weights=gap, minlength=n), gaps.astype(np.float64))
    spread = np.bincount(gapped, weights=(gap - gap_mean[gapped]) ** 2, minlength=n)
    gap_std = np.sqrt(_ratio(spread, np.maximum(gaps - 1, 0).astype(np.float64)))
    last_gap = np.zeros(n)
    last_gap[gapped] = gap  # in day order: the last assignment per customer wins

    totals = {name: total(values) for name, values in counters.items()}
    out["has_purchased"] = has.astype(np.float64)
    out["frequency"] = np.maximum(purchase_days - 1, 0).astype(np.float64)
    out["recency_days"] = np.where(has, last_day - first_day, 0.0)
    out["age_days"] = np.where(has, as_of_day - first_day, 0.0)
    repeat_spend = (totals["spend_units"] - first_spend) * money
    out["monetary_value"] = _ratio(repeat_spend, out["frequency"])
    out["orders_total"] = totals["orders"]
    out["spend_total"] = totals["spend_units"] * money
    out["units_total"] = totals["units"]
    out["average_order_value"] = _ratio(out["spend_total"], out["orders_total"])
    for length in WINDOWS:
        out[f"orders_{length}d"] = window("orders", length)
        out[f"spend_{length}d"] = window("spend_units", length) * money
    out["days_since_last_order"] = np.where(has, as_of_day - last_day, 0.0)
    out["interpurchase_mean_days"] = gap_mean
    out["interpurchase_std_days"] = gap_std
    out["last_gap_days"] = last_gap
    out["overdue_ratio"] = _ratio(out["days_since_last_order"], out["interpurchase_mean_days"])
    out["orders_trend"] = np.log1p(out["orders_90d"]) - np.log1p(window("orders", 90, 90))
    out["spend_trend"] = np.log1p(out["spend_90d"]) - np.log1p(
        window("spend_units", 90, 90) * money
    )
    out["refunds_total"] = totals["refunds"]
    out["refunded_total"] = totals["refunded_units"] * money
    out["refund_rate"] = _ratio(out["refunds_total"], out["orders_total"])
    out["refunded_share"] = _ratio(out["refunded_total"], out["spend_total"])
    for name in ("sessions", "views", "carts"):
        out[f"{name}_total"] = totals[name]
        out[f"{name}_30d"] = window(name, 30)
    out["checkouts_total"] = totals["checkouts"]
    out["view_to_purchase"] = _ratio(out["orders_total"], out["views_total"])
    out["cart_to_purchase"] = _ratio(out["orders_total"], out["carts_total"])
    abandoned = np.maximum(out["checkouts_total"] - out["orders_total"], 0.0)
    out["checkout_abandonment"] = _ratio(abandoned, out["checkouts_total"])
    out["active_days_total"] = np.bincount(code, minlength=n).astype(np.float64)
    out["active_days_30d"] = np.bincount(code[age < 30], minlength=n).astype(np.float64)
    starts, ends = _boundaries(code)
    first_visit, last_visit = day[starts], day[ends]  # every customer has a row
    out["days_since_last_visit"] = (as_of_day - last_visit).astype(np.float64)
    out["days_since_first_visit"] = (as_of_day - first_visit).astype(np.float64)
    out["cutoff_season_sin"], out["cutoff_season_cos"] = (
        np.full(n, value) for value in _season(as_of_day)
    )
    out["first_visit_season_sin"], out["first_visit_season_cos"] = _season(first_visit)
    index = pd.Index(customers, name="customer_id")
    return pd.DataFrame({name: out[name] for name in BEHAVIOUR_NAMES}, index=index)
