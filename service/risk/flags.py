"""Risk flags: customers whose recent behaviour is anomalous *for them*.

Each flag compares the recent window (the last ``window_days`` up to and including the day
scored) with the customer's own earlier history (up to ``history_days`` before the window), so
a big spender spending big is not flagged, while a small one suddenly spending big is:

- ``spend_spike``: spend in the window is at least ``spend_spike_ratio`` times their usual spend
  per window length, and at least ``min_spend``, and they have been buying for at least
  ``min_history_days`` before the window. Their usual spend is what they spent in the earlier
  history spread over the days of it they were a customer (from their first order): a customer
  of two months is not averaged over a year of zeros. The minimum history keeps a new customer's
  first baskets from being "anomalous"; the minimum amount keeps pennies from being flagged.
- ``refund_spike``: at least ``min_refunds`` refunds in the window, and refunds per order there at
  least ``refund_rate_gap`` above their rate in the earlier history (0 without earlier orders).
  The window's orders count as at least one: a refund is often of an order placed before it.
  No history is needed: refunding most of what one buys is worth a look on any account.

Everything is vectorised over customers (rescoring everyone computes the flags) and reads only
the day aggregates of ``service.ml.activity``, so the same function serves the portrait's stored
aggregates and the point-in-time events of a score as of any moment. Days are whole UTC days,
the grain of the aggregates, as in ``service.ml.features``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, TypedDict

import numpy as np
import pandas as pd

from service.ml.activity import MONEY_UNITS

if TYPE_CHECKING:
    from service.config import Settings

MEASURES = (
    "recent_spend", "usual_spend", "history_days", "recent_orders", "recent_refunds",
    "recent_refund_rate", "earlier_orders", "earlier_refunds", "usual_refund_rate",
)  # fmt: skip
"""Per customer: spend in the window and usual spend per window length (shop currency); days of
earlier history (from the first order, at most ``history_days``); orders and refunds in the
window and in the earlier history, and refunds per order in each."""


class RiskFlag(TypedDict):
    """One flag as stored (``scores.risk_flags``) and served (``RiskFlagRead``)."""

    flag: str
    reason: str
    window_days: int
    history_days: int
    recent: float
    usual: float
    ratio: float | None


@dataclass(frozen=True)
class RiskRules:
    """The thresholds (``CLV_RISK_*``) and the currency the reasons name."""

    window_days: int = 30
    history_days: int = 365
    min_history_days: int = 90
    spend_spike_ratio: float = 5.0
    min_spend: float = 500.0
    min_refunds: int = 2
    refund_rate_gap: float = 0.5
    currency: str = "USD"

    @classmethod
    def from_settings(cls, settings: Settings) -> RiskRules:
        return cls(
            window_days=settings.risk_window_days,
            history_days=settings.risk_history_days,
            min_history_days=settings.risk_min_history_days,
            spend_spike_ratio=settings.risk_spend_spike_ratio,
            min_spend=settings.risk_min_spend,
            min_refunds=settings.risk_min_refunds,
            refund_rate_gap=settings.risk_refund_rate_gap,
            currency=settings.currency,
        )


def _per_customer(code: np.ndarray, values: np.ndarray, size: int) -> np.ndarray:
    return np.bincount(code, weights=values.astype(np.float64), minlength=size)


def _rate(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator, 0 where the denominator is 0."""
    ratio: np.ndarray = np.divide(
        numerator, denominator, out=np.zeros_like(numerator), where=denominator > 0
    )
    return ratio


def _history_days(code: np.ndarray, age: np.ndarray, size: int, rules: RiskRules) -> np.ndarray:
    """Days from each customer's first order before the window to the window, at most
    ``history_days`` (0 without one): the span their usual spend is spread over.
    ``code``/``age``: customer code and age in days of the days with orders before the window."""
    oldest = np.full(size, -1, dtype=np.int64)
    np.maximum.at(oldest, code, age)
    return np.clip(oldest - rules.window_days + 1, 0, rules.history_days)


def risk_measures(days: pd.DataFrame, as_of_day: int, rules: RiskRules) -> pd.DataFrame:
    """(customers x MEASURES), indexed by customer_id, sorted; one row per customer in ``days``.

    ``days``: day aggregates (customer_id, day, orders, spend_units, refunds, ...); days after
    ``as_of_day`` are ignored. Days older than the earlier history only tell since when the
    customer has been buying.
    """
    day = days["day"].to_numpy(np.int64)
    age = as_of_day - day
    kept = age >= 0
    code, customers = pd.factorize(days["customer_id"].to_numpy()[kept], sort=True)
    age, size = age[kept], len(customers)
    recent = age < rules.window_days
    earlier = ~recent & (age < rules.window_days + rules.history_days)

    def total(counter: str, where: np.ndarray) -> np.ndarray:
        values = days[counter].to_numpy()[kept]
        return _per_customer(code, np.where(where, values, 0), size)

    ordered = (days["orders"].to_numpy()[kept] > 0) & ~recent
    history = _history_days(code[ordered], age[ordered], size, rules)
    earlier_spend = total("spend_units", earlier) / MONEY_UNITS
    recent_orders, recent_refunds = total("orders", recent), total("refunds", recent)
    earlier_orders, earlier_refunds = total("orders", earlier), total("refunds", earlier)
    out = pd.DataFrame(  # built at once: a column at a time cost more than the sums
        {
            "recent_spend": total("spend_units", recent) / MONEY_UNITS,
            "usual_spend": _rate(earlier_spend * rules.window_days, history.astype(np.float64)),
            "history_days": history,
            "recent_orders": recent_orders,
            "recent_refunds": recent_refunds,
            "recent_refund_rate": recent_refunds / np.maximum(recent_orders, 1),
            "earlier_orders": earlier_orders,
            "earlier_refunds": earlier_refunds,
            "usual_refund_rate": _rate(earlier_refunds, earlier_orders),
        },
        index=pd.Index(customers, name="customer_id"),
    )
    return out[list(MEASURES)]


def spend_spikes(measures: pd.DataFrame, rules: RiskRules) -> pd.Series:
    """Per customer: True where the window's spend is a spike for them (see the module)."""
    recent = measures["recent_spend"]
    return (
        (measures["history_days"] >= rules.min_history_days)
        & (recent > 0)
        & (recent >= rules.min_spend)
        & (recent >= rules.spend_spike_ratio * measures["usual_spend"])
    )


def refund_spikes(measures: pd.DataFrame, rules: RiskRules) -> pd.Series:
    """Per customer: True where the window's refunds are a spike for them (see the module)."""
    gap = measures["recent_refund_rate"] - measures["usual_refund_rate"]
    return (measures["recent_refunds"] >= rules.min_refunds) & (gap >= rules.refund_rate_gap)


def _plural(count: float, word: str) -> str:
    return f"{int(count):,} {word}{'' if int(count) == 1 else 's'}"


def _spend_flag(row: pd.Series, rules: RiskRules) -> RiskFlag:
    window, history = rules.window_days, int(row["history_days"])
    recent, usual = float(row["recent_spend"]), float(row["usual_spend"])
    ratio = recent / usual if usual > 0 else None
    spent = f"spent {recent:,.2f} {rules.currency} in the last {window} days"
    if ratio is None:
        reason = f"{spent}, after nothing in the previous {history} days"
    else:
        reason = (
            f"{spent}, {ratio:.1f} times their usual {usual:,.2f} per {window} days over the "
            f"previous {history} days"
        )
    return _flag("spend_spike", reason, rules, history, recent, usual, ratio)


def _refund_flag(row: pd.Series, rules: RiskRules) -> RiskFlag:
    window, history = rules.window_days, int(row["history_days"])
    recent, usual = float(row["recent_refund_rate"]), float(row["usual_refund_rate"])
    refunds = _plural(row["recent_refunds"], "refund")
    if row["recent_orders"] > 0:
        orders = _plural(row["recent_orders"], "order")
        reason = f"{refunds} against {orders} in the last {window} days ({recent:.2f} per order)"
    else:
        reason = f"{refunds} and no orders in the last {window} days"
    if row["earlier_orders"] > 0:
        reason += (
            f", against their usual {usual:.2f} per order ("
            f"{_plural(row['earlier_refunds'], 'refund')}, "
            f"{_plural(row['earlier_orders'], 'order')} in the previous {history} days)"
        )
    elif history:  # orders before the earlier history only: it is full length
        reason += f", with no orders in the previous {history} days"
    else:
        reason += ", with no orders before"
    ratio = recent / usual if usual > 0 else None
    return _flag("refund_spike", reason, rules, history, recent, usual, ratio)


def _flag(
    name: str,
    reason: str,
    rules: RiskRules,
    history: int,
    recent: float,
    usual: float,
    ratio: float | None,
) -> RiskFlag:
    return RiskFlag(
        flag=name,
        reason=reason,
        window_days=rules.window_days,
        history_days=history,
        recent=round(recent, 4),
        usual=round(usual, 4),
        ratio=None if ratio is None else round(ratio, 2),
    )


def risk_flags(days: pd.DataFrame, as_of_day: int, rules: RiskRules) -> dict[str, list[RiskFlag]]:
    """The flags of every flagged customer in ``days`` as of ``as_of_day`` (customers without
    any are left out): spend_spike first, then refund_spike."""
    if days.empty:
        return {}
    measures = risk_measures(days, as_of_day, rules)
    spend, refund = spend_spikes(measures, rules), refund_spikes(measures, rules)
    flagged: dict[str, list[RiskFlag]] = {}
    for customer, row in measures[spend | refund].iterrows():
        flags = [_spend_flag(row, rules)] if spend[customer] else []
        flags += [_refund_flag(row, rules)] if refund[customer] else []
        flagged[str(customer)] = flags
    return flagged
