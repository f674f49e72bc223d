"""Drift statistics: how far a current population's distribution has moved from a reference one.

Pure functions on arrays and frames (no database): the population stability index on the
reference's quantile bins, the two-sample Kolmogorov-Smirnov statistic, the purchase rate of the
customers active in a window, and the comparison of many features at once.

Both statistics are chosen for thresholds that mean the same on any sample size. With thousands
of customers the KS p-value flags differences far too small to matter (it is reported, not
thresholded); the KS statistic (the largest gap between the two empirical CDFs, 0..1) and the
PSI (the symmetrised KL divergence between binned proportions; 0.1 "some", 0.25 "major" shift in
the credit-scoring folklore) are effect sizes.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
from scipy.stats import ks_2samp

from service.ml.examples import EventLog

MIN_SEGMENT_Z = 4.0
"""How many (Poisson) standard errors a segment's excess change must also be: the size threshold
alone lets small segments drift on noise, and a drift check runs every hour."""
PSI_BINS = 10
PSI_FLOOR = 1e-4
"""Proportions are floored here before the logarithm, so a bin that the current population left
empty adds a large but finite term (0.1 of the reference there adds ~0.7)."""


def psi_edges(reference: np.ndarray, bins: int = PSI_BINS) -> np.ndarray:
    """Right-closed bin edges at the reference's deciles (for ``bins`` = 10), as data values.

    Features are often mostly zeros or a few integers: such point masses make quantiles
    coincide, so the edges are the distinct quantiles, each bin (e[i-1], e[i]] holding the point
    mass at its top edge whole; the last bin is (e[-1], inf) and an edge at the reference's
    maximum is dropped, so every bin holds part of the reference. A constant reference gives
    one edge: "at most that value" and "above it"."""
    values = np.asarray(reference, dtype=float)
    quantiles = np.quantile(values, np.arange(1, bins) / bins, method="inverted_cdf")
    edges = np.unique(quantiles)
    return edges[edges < values.max()] if len(edges) > 1 else edges


def proportions(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """(len(edges) + 1,) share of ``values`` in each right-closed bin of ``edges``."""
    counts = np.bincount(
        np.searchsorted(edges, np.asarray(values, dtype=float), side="left"),
        minlength=len(edges) + 1,
    )
    shares: np.ndarray = counts / max(len(values), 1)
    return shares


def psi(reference: np.ndarray, current: np.ndarray, bins: int = PSI_BINS) -> float:
    """Population stability index: sum over bins of (c - r) ln(c / r), on the reference's
    quantile bins (``psi_edges``), proportions floored at ``PSI_FLOOR``. 0 when the binned
    distributions agree; symmetric in the proportions, not in the bins (the reference's)."""
    if len(reference) == 0 or len(current) == 0:
        return 0.0
    edges = psi_edges(reference, bins)
    expected = np.maximum(proportions(reference, edges), PSI_FLOOR)
    actual = np.maximum(proportions(current, edges), PSI_FLOOR)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def ks(reference: np.ndarray, current: np.ndarray) -> tuple[float, float]:
    """(statistic, p-value) of the two-sample Kolmogorov-Smirnov test (scipy's ``ks_2samp``):
    the largest gap between the two empirical CDFs, exact with ties."""
    if len(reference) == 0 or len(current) == 0:
        return 0.0, 1.0
    with warnings.catch_warnings():  # scipy falls back to the asymptotic p-value and says so
        warnings.filterwarnings("ignore", "ks_2samp: Exact calculation", RuntimeWarning)
        result = ks_2samp(np.asarray(reference, float), np.asarray(current, float))
    return float(result.statistic), float(result.pvalue)


@dataclass(frozen=True)
class Thresholds:
    """When a distribution counts as drifted: PSI at least ``psi`` and KS statistic at least
    ``ks``. Both, because each alone over-reacts: PSI to a few far values in a sparse bin, KS to
    a uniform nudge of a continuous feature that changes no decision. When the purchase rate
    does: its relative change at least ``purchase_rate`` either way; a segment's: its excess
    change (``SegmentRate``), for segments with ``min_segment_customers`` active customers in
    both windows."""

    psi: float = 0.2
    ks: float = 0.1
    purchase_rate: float = 0.3
    min_segment_customers: int = 200


@dataclass(frozen=True)
class Shift:
    """One distribution's move from the reference to the current population."""

    psi: float
    ks: float
    ks_pvalue: float
    reference_mean: float
    current_mean: float

    def drifted(self, thresholds: Thresholds) -> bool:
        return self.psi >= thresholds.psi and self.ks >= thresholds.ks


def compare(reference: np.ndarray, current: np.ndarray) -> Shift:
    statistic, pvalue = ks(reference, current)
    return Shift(
        psi=psi(reference, current),
        ks=statistic,
        ks_pvalue=pvalue,
        reference_mean=float(np.mean(reference)) if len(reference) else 0.0,
        current_mean=float(np.mean(current)) if len(current) else 0.0,
    )


def compare_columns(reference: pd.DataFrame, current: pd.DataFrame) -> dict[str, Shift]:
    """Each column of ``reference`` against the same column of ``current``, largest PSI first."""
    shifts = {
        name: compare(reference[name].to_numpy(float), current[name].to_numpy(float))
        for name in reference.columns
    }
    return dict(sorted(shifts.items(), key=lambda item: -item[1].psi))


def _window(log: EventLog, moment: datetime, window_days: int) -> pd.DataFrame:
    seconds = log.events["seconds"]
    start = int((moment - timedelta(days=window_days)).timestamp())
    return log.events[(seconds > start) & (seconds <= int(moment.timestamp()))]


@dataclass(frozen=True)
class PurchaseRate:
    """The purchases of the customers active (any event) in a window."""

    customers: int
    orders: int
    buyers: int
    window_days: int

    @property
    def per_customer_30d(self) -> float:
        """Orders per active customer per 30 days: the rate the drift check compares."""
        return self.orders / max(self.customers, 1) * 30 / self.window_days

    @property
    def share_buying(self) -> float:
        return self.buyers / max(self.customers, 1)


def window_orders(log: EventLog, moment: datetime, window_days: int) -> pd.Series:
    """Orders in (moment - window_days, moment] of each customer active then (0 for those who
    only browsed), indexed by customer_id, sorted."""
    inside = _window(log, moment, window_days)
    purchases = inside["type"].eq("purchase").astype(int)
    return purchases.groupby(inside["customer_id"]).sum().sort_index()


def purchase_rate(orders: pd.Series, window_days: int) -> PurchaseRate:
    """``orders``: ``window_orders`` of (a segment of) the active customers."""
    return PurchaseRate(
        customers=len(orders),
        orders=int(orders.sum()),
        buyers=int((orders > 0).sum()),
        window_days=window_days,
    )


def relative_change(reference: float, current: float) -> float | None:
    """current / reference - 1; None when the reference is 0 (no rate to compare with)."""
    return None if reference == 0 else current / reference - 1


@dataclass(frozen=True)
class SegmentRate:
    """One segment's purchase rate (customers with ``attribute`` = ``level``) in both windows.

    ``change`` is its own relative change; ``excess_change`` the same relative to the median
    segment of its attribute: (1 + change) / (1 + median change) - 1. Seasons, promotions and
    a shop-wide trend move every segment alike and cancel out; a segment that buys differently
    from the others (an acquisition channel gone bad) stands out. The median, not the shop's
    mean, so the moving segment does not pull its own yardstick along."""

    attribute: str
    level: str
    reference: PurchaseRate
    current: PurchaseRate
    change: float
    excess_change: float

    @property
    def z(self) -> float:
        """The excess change in standard errors: log(1 + excess) over the Poisson standard error
        of a log rate ratio, sqrt(1/orders before + 1/orders after). Customers differ in their
        rates, so orders are overdispersed and the true error is somewhat larger: the check
        asks for |z| >= ``MIN_SEGMENT_Z``, not 2."""
        orders = min(self.reference.orders, self.current.orders)
        if orders == 0 or self.excess_change <= -1:
            return float("-inf") if self.excess_change < 0 else 0.0
        error = np.sqrt(1 / self.reference.orders + 1 / self.current.orders)
        return float(np.log1p(self.excess_change) / error)

    def drifted(self, thresholds: Thresholds) -> bool:
        return abs(self.excess_change) >= thresholds.purchase_rate and abs(self.z) >= MIN_SEGMENT_Z


def segment_rates(
    reference: pd.Series,
    current: pd.Series,
    reference_segments: pd.Series,
    current_segments: pd.Series,
    attribute: str,
    window_days: int,
    min_customers: int,
) -> list[SegmentRate]:
    """Each level of one attribute with at least ``min_customers`` active customers in both
    windows. ``reference``/``current``: ``window_orders``; ``*_segments``: each customer's
    level (missing: not in any segment), indexed like the orders."""
    rates: dict[str, tuple[PurchaseRate, PurchaseRate, float]] = {}
    for level in sorted(set(reference_segments.dropna()) & set(current_segments.dropna())):
        before = purchase_rate(reference[reference_segments == level], window_days)
        after = purchase_rate(current[current_segments == level], window_days)
        change = relative_change(before.per_customer_30d, after.per_customer_30d)
        if min(before.customers, after.customers) >= min_customers and change is not None:
            rates[str(level)] = (before, after, change)
    if len(rates) < 2:
        return []  # one segment has no others to be compared with
    median = 1 + float(np.median([change for _, _, change in rates.values()]))
    return [  # the median segment stopped buying: every other change is beyond comparison
        SegmentRate(attribute, level, before, after, change, (1 + change) / median - 1)
        for level, (before, after, change) in rates.items()
        if median > 0
    ]
