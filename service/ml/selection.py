"""What serves: candidates judged on a time-later window, and the rule that picks one.

Training for a horizon H at T first steps back to ``S = T - V`` (``selection_window``), fits every
candidate on the events up to S only, and compares their predictions for the customers with an
order by S against what those customers spent in (S, T]: a window none of them saw, later than
everything they learnt from (held-out customers of the training windows would not do: the
network saw the same months through other customers). The candidates (``CANDIDATES``):

- ``bgnbd`` and ``paretonbd``: BG/NBD or Pareto/NBD with Gamma-Gamma, the analysts' yardsticks;
- ``deep``: the network alone;
- ``blend``: the network's ranking carried at the level of the best BTYD candidate
  (``QuantileMap``), so its level never strays from the baseline's.

The rule (``choose``): the best BTYD candidate is the one with the highest normalised Gini (decile
MAPE breaks ties). Another candidate may serve only when it is at least as good on all three of
normalised Gini, decile MAPE and |aggregate revenue error|; among those, the highest Gini
serves; when none is, the best BTYD candidate does. Whatever serves, its 80% interval is
calibrated on the same window (``IntervalBands``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import numpy as np

BTYD_CANDIDATES = ("bgnbd", "paretonbd")
CANDIDATES = (*BTYD_CANDIDATES, "deep", "blend")
RULE = (
    "judged on the customers with an order by the window's start, against their spend in the "
    "window: the best BTYD candidate (highest normalised Gini, then lowest decile MAPE) serves "
    "unless another is at least as good on normalised Gini, decile MAPE and |aggregate revenue "
    "error|; among those, the highest normalised Gini serves"
)
MIN_WINDOW_DAYS = 28
_TIE = 1e-6
"""Differences below this are ties: the blend's total equals its anchor's up to rounding."""


def selection_window(first: datetime, as_of: datetime, horizon: int, min_history: int) -> int:
    """Days V of the window (T - V, T] the candidates are judged on: the horizon, or less when
    the data are short, so that what lies before the window (at least as long as the window
    itself, beyond ``min_history``) can still train every candidate. Never under
    ``MIN_WINDOW_DAYS``: on data that short the network may not train before the window, and is
    then not judged (the BTYD candidates are)."""
    span = (as_of - first).days
    return min(horizon, max(MIN_WINDOW_DAYS, (span - min_history) // 2))


def best_btyd(metrics: dict[str, dict[str, Any]]) -> str:
    """The BTYD candidate with the highest normalised Gini (then the lowest decile MAPE)."""
    return max((n for n in BTYD_CANDIDATES if n in metrics), key=lambda n: _key(metrics[n]))


def choose(metrics: dict[str, dict[str, Any]]) -> tuple[str, dict[str, str]]:
    """(the candidate that serves, a reason per candidate) by ``RULE``. ``metrics``: candidate ->
    ``service.ml.metrics.evaluate`` output on the window; missing candidates cannot serve."""
    btyd = [name for name in BTYD_CANDIDATES if name in metrics]
    best = best_btyd(metrics)
    bar = metrics[best]
    reasons = {name: f"{name} is not the best BTYD candidate" for name in btyd if name != best}
    qualified = []
    for name in (n for n in CANDIDATES if n in metrics and n not in BTYD_CANDIDATES):
        shortfalls = _shortfalls(metrics[name], bar, best)
        if shortfalls:
            reasons[name] = "; ".join(shortfalls)
        else:
            qualified.append(name)
    served = max(qualified, key=lambda name: _key(metrics[name]), default=best)
    for name in qualified:
        reasons[name] = "serves: no worse than " + best if name == served else "a lower Gini"
    reasons[best] = (
        "serves: no candidate is as good on every check"
        if served == best
        else (f"the best BTYD candidate; {served} is no worse on every check")
    )
    return served, reasons


def _key(metrics: dict[str, Any]) -> tuple[float, float]:
    gini, mape = metrics.get("normalized_gini"), metrics.get("decile_mape")
    return (_number(gini, -math.inf), -_number(mape, math.inf))


def _number(value: Any, otherwise: float) -> float:
    return float(value) if value is not None and math.isfinite(value) else otherwise


def _shortfalls(metrics: dict[str, Any], bar: dict[str, Any], best: str) -> list[str]:
    """What keeps a candidate from serving, against the best BTYD candidate's figures."""
    checks = (
        ("normalised Gini", "normalized_gini", 1.0, lambda v: v),
        ("decile MAPE", "decile_mape", -1.0, lambda v: v),
        ("|aggregate revenue error|", "aggregate_revenue_error", -1.0, abs),
    )
    found = []
    for label, key, sign, measure in checks:
        mine, theirs = metrics.get(key), bar.get(key)
        if mine is None or not math.isfinite(mine):
            found.append(f"{label} undefined")
        elif theirs is None or not math.isfinite(theirs):  # "no worse" cannot be shown
            found.append(f"{label} not comparable: {best}'s is undefined")
        elif sign * (measure(mine) - measure(theirs)) < -_TIE:
            found.append(f"{label} {measure(mine):.4f} worse than {best}'s {measure(theirs):.4f}")
    return found


@dataclass(frozen=True)
class QuantileMap:
    """The blend: the network's ranking carried at the BTYD model's level. A customer whose
    network prediction is the network's q-quantile over the shop's customers with an order gets
    the BTYD model's q-quantile (quantile mapping), so the blend ranks as the network does and
    is spread like the BTYD forecast, which is the better calibrated of the two where the data
    are short or small (the network alone spread its predictions too widely on Online Retail R1:
    at the BTYD level its bottom decile predicted a third of what those customers spent, its top
    decile two thirds; bench/real_data.py). Both sides are kept per day of horizon, so another
    horizon maps too; beyond the ends the map is proportional. Monotone: a higher network score
    never gets a lower blend."""

    network: list[float]  # quantiles of the network's predicted spend per day
    btyd: list[float]  # the same quantiles of the BTYD model's

    @classmethod
    def fit(cls, deep: np.ndarray, btyd: np.ndarray, days: int, points: int = 1025) -> QuantileMap:
        levels = np.linspace(0.0, 1.0, points)
        network = np.maximum.accumulate(np.quantile(np.asarray(deep, float) / days, levels))
        target = np.maximum.accumulate(np.quantile(np.asarray(btyd, float) / days, levels))
        mapped = cls(network.tolist(), target.tolist()).apply(deep, days).sum()
        scale = float(np.sum(btyd)) / mapped if mapped > 0 else 1.0  # interpolation's drift
        return cls(network.tolist(), (target * scale).tolist())

    def apply(self, deep: np.ndarray, days: int) -> np.ndarray:
        rate = np.maximum(np.asarray(deep, dtype=float), 0.0) / days
        network, target = np.asarray(self.network), np.asarray(self.btyd)
        mapped = np.interp(rate, network, target)
        low, high = network[0], network[-1]
        if low > 0:
            mapped = np.where(rate < low, target[0] * rate / low, mapped)
        if high > 0:
            mapped = np.where(rate > high, target[-1] * rate / high, mapped)
        result: np.ndarray = mapped * days
        return result


@dataclass(frozen=True)
class IntervalBands:
    """The 80% interval of the served value, calibrated on the window (split conformal, per
    band of predicted spend per day): within each band, the 10% and 50% quantiles of actual /
    predicted, and the upper end at the quantile that leaves 20% of the band outside. Where many
    customers buy nothing, the lower end is 0 and cannot miss, so the upper end takes the whole
    20% (an interval cut 10/10 would cover 90%: what the network's own quantiles did). Fitted
    over the window's V days and applied at the asked horizon through the bands of spend per
    day: where V < H (data shorter than 2H + min_history) that carries the window's dispersion
    over, an approximation; the coverage stored with the version is the window's own, in-sample."""

    edges: list[float]  # between bands, on predicted spend per day
    low: list[float]
    middle: list[float]
    high: list[float]

    @classmethod
    def fit(
        cls, predicted: np.ndarray, actual: np.ndarray, days: int, bands: int = 10
    ) -> IntervalBands:
        rate = np.asarray(predicted, dtype=float) / days
        bands = max(1, min(bands, len(rate) // 20))
        edges = np.unique(np.quantile(rate, np.linspace(0, 1, bands + 1)[1:-1]))
        band = np.searchsorted(edges, rate, side="right")
        ratio = np.asarray(actual, dtype=float) / np.maximum(predicted, 1e-9)
        low, middle, high = [], [], []
        for b in range(len(edges) + 1):
            inside = ratio[band == b]
            if not len(inside):
                inside = ratio
            lower = float(np.quantile(inside, 0.1))
            below = float(np.mean(inside < lower))
            low.append(lower)
            middle.append(float(np.quantile(inside, 0.5)))
            high.append(float(np.quantile(inside, min(0.8 + below, 1.0))))
        return cls(edges.tolist(), low, middle, high)

    def apply(self, predicted: np.ndarray, days: int) -> tuple[np.ndarray, ...]:
        """(p10, p50, p90) for predictions over ``days``."""
        predicted = np.asarray(predicted, dtype=float)
        band = np.searchsorted(np.asarray(self.edges), predicted / days, side="right")
        return tuple(predicted * np.asarray(q)[band] for q in (self.low, self.middle, self.high))

    def state(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> IntervalBands:
        return cls(**{key: list(values) for key, values in state.items()})


@dataclass(frozen=True)
class Serving:
    """What a trained model serves for customers with an order (customers without one are the
    network's, whatever serves: the BTYD models start at a first purchase)."""

    served: str  # one of CANDIDATES
    anchor: str  # the best BTYD candidate on the window: the blend's level
    bands: IntervalBands
    blend: QuantileMap | None = None  # the blend at the training time (set whatever serves)

    def state(self) -> dict[str, Any]:
        return {
            "served": self.served,
            "anchor": self.anchor,
            "bands": self.bands.state(),
            "blend": asdict(self.blend) if self.blend is not None else None,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Serving:
        blend = state["blend"]
        return cls(
            state["served"],
            state["anchor"],
            IntervalBands.from_state(state["bands"]),
            QuantileMap(list(blend["network"]), list(blend["btyd"])) if blend else None,
        )
