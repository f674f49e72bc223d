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


def _ratio(numerator: pd.Series, denominator: pd.Series) -> pd.Series:
    return (numerator / denominator.where(denominator > 0)).fillna(0.0)


def behaviour_features(days: pd.DataFrame, as_of_day: int) -> pd.DataFrame:
    """(customers x BEHAVIOUR_FEATURES), indexed by customer_id, sorted.

    ``days``: the day aggregates (customer_id, day, counters) of days <= ``as_of_day``.
    """
    if days.empty:
        return pd.DataFrame(columns=BEHAVIOUR_NAMES, index=pd.Index([], name="customer_id"))
    # Sums in float64: exact below 2**53 (900 billion in money), and past it never wrapped
    # around as int64 sums over a customer's days would be.
    days = days.astype(dict.fromkeys(DAY_COUNTERS, np.float64)).sort_values(["customer_id", "day"])
    by_customer = days.groupby("customer_id", sort=True)
    totals = by_customer[list(DAY_COUNTERS)].sum()
    out = pd.DataFrame(index=totals.index)
    age = as_of_day - days["day"]

    def window(counter: str, length: int, offset: int = 0) -> pd.Series:
        inside = (age >= offset) & (age < offset + length)
        summed = days.loc[inside].groupby("customer_id")[counter].sum()
        return summed.reindex(out.index, fill_value=0).astype(float)

    money = 1.0 / MONEY_UNITS
    purchase_days = days.loc[days["orders"] > 0, ["customer_id", "day", "spend_units"]]
    bought = purchase_days.groupby("customer_id", sort=True)
    first_day = bought["day"].min().reindex(out.index)
    last_day = bought["day"].max().reindex(out.index)
    count = bought.size().reindex(out.index, fill_value=0)
    first_spend = bought["spend_units"].first().reindex(out.index, fill_value=0)
    gaps = (
        purchase_days["day"]
        .diff()
        .where(purchase_days["customer_id"].eq(purchase_days["customer_id"].shift()))
    )
    gap_stats = gaps.groupby(purchase_days["customer_id"]).agg(["mean", "std", "last"])
    gap_stats = gap_stats.reindex(out.index)

    out["has_purchased"] = (count > 0).astype(float)
    out["frequency"] = (count - 1).clip(lower=0).astype(float)
    out["recency_days"] = (last_day - first_day).fillna(0.0)
    out["age_days"] = (as_of_day - first_day).fillna(0.0)
    repeat_spend = (totals["spend_units"] - first_spend) * money
    out["monetary_value"] = _ratio(repeat_spend, out["frequency"])
    out["orders_total"] = totals["orders"].astype(float)
    out["spend_total"] = totals["spend_units"] * money
    out["units_total"] = totals["units"].astype(float)
    out["average_order_value"] = _ratio(out["spend_total"], out["orders_total"])
    for length in WINDOWS:
        out[f"orders_{length}d"] = window("orders", length)
        out[f"spend_{length}d"] = window("spend_units", length) * money
    out["days_since_last_order"] = (as_of_day - last_day).fillna(0.0)
    out["interpurchase_mean_days"] = gap_stats["mean"].fillna(0.0)
    out["interpurchase_std_days"] = gap_stats["std"].fillna(0.0)
    out["last_gap_days"] = gap_stats["last"].fillna(0.0)
    out["overdue_ratio"] = _ratio(out["days_since_last_order"], out["interpurchase_mean_days"])
    out["orders_trend"] = np.log1p(out["orders_90d"]) - np.log1p(window("orders", 90, 90))
    out["spend_trend"] = np.log1p(out["spend_90d"]) - np.log1p(
        window("spend_units", 90, 90) * money
    )
    out["refunds_total"] = totals["refunds"].astype(float)
    out["refunded_total"] = totals["refunded_units"] * money
    out["refund_rate"] = _ratio(out["refunds_total"], out["orders_total"])
    out["refunded_share"] = _ratio(out["refunded_total"], out["spend_total"])
    out["sessions_total"] = totals["sessions"].astype(float)
    out["sessions_30d"] = window("sessions", 30)
    out["views_total"] = totals["views"].astype(float)
    out["views_30d"] = window("views", 30)
    out["carts_total"] = totals["carts"].astype(float)
    out["carts_30d"] = window("carts", 30)
    out["checkouts_total"] = totals["checkouts"].astype(float)
    out["view_to_purchase"] = _ratio(out["orders_total"], out["views_total"])
    out["cart_to_purchase"] = _ratio(out["orders_total"], out["carts_total"])
    abandoned = (out["checkouts_total"] - out["orders_total"]).clip(lower=0)
    out["checkout_abandonment"] = _ratio(abandoned, out["checkouts_total"])
    out["active_days_total"] = by_customer.size().astype(float)
    out["active_days_30d"] = (
        days.loc[age < 30].groupby("customer_id").size().reindex(out.index, fill_value=0)
    ).astype(float)
    first_visit = by_customer["day"].min()
    out["days_since_last_visit"] = (as_of_day - by_customer["day"].max()).astype(float)
    out["days_since_first_visit"] = (as_of_day - first_visit).astype(float)
    out["cutoff_season_sin"], out["cutoff_season_cos"] = _season(as_of_day)
    out["first_visit_season_sin"], out["first_visit_season_cos"] = _season(first_visit.to_numpy())
    return out[BEHAVIOUR_NAMES].astype(float)
