"""The drift statistics on hand-made arrays, against values computed by hand."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from service.ml.activity import EVENT_COLUMNS, ITEM_COLUMNS
from service.ml.drift.statistics import (
    PSI_FLOOR,
    Shift,
    Thresholds,
    compare,
    ks,
    proportions,
    psi,
    psi_edges,
    purchase_rate,
    relative_change,
    segment_rates,
    window_orders,
)
from service.ml.examples import EventLog


def test_psi_of_a_binary_feature_by_hand() -> None:
    reference = np.array([0] * 50 + [1] * 50)
    current = np.array([0] * 25 + [1] * 75)

    assert psi_edges(reference).tolist() == [0]  # "at most 0" and "above 0"
    assert psi(reference, current) == pytest.approx(
        (0.25 - 0.5) * math.log(0.25 / 0.5) + (0.75 - 0.5) * math.log(0.75 / 0.5)
    )


def test_psi_on_decile_bins_with_emptied_bins_floored() -> None:
    """Deciles of 0..999 are 99, 199, ..., 899; 500..1499 leaves the five lowest bins empty
    (floored) and puts 60% above 899."""
    reference, current = np.arange(1000), np.arange(500, 1500)

    assert psi_edges(reference).tolist() == [99, 199, 299, 399, 499, 599, 699, 799, 899]
    expected = 5 * (PSI_FLOOR - 0.1) * math.log(PSI_FLOOR / 0.1) + (0.6 - 0.1) * math.log(6)
    assert psi(reference, current) == pytest.approx(expected)  # 4.3463


def test_point_masses_get_a_bin_of_their_own() -> None:
    """80% zeros: one bin holds them all; the top edge at the maximum is dropped, so every bin
    holds part of the reference."""
    reference = np.array([0] * 80 + list(range(1, 21)))

    edges = psi_edges(reference)

    assert edges.tolist() == [0, 10]
    assert proportions(reference, edges).tolist() == [0.8, 0.1, 0.1]
    assert psi_edges(np.full(10, 3.0)).tolist() == [3.0]  # constant: "at most 3", "above"


def test_identical_samples_do_not_drift() -> None:
    values = np.random.default_rng(0).gamma(2.0, 10.0, 2_000)

    same = compare(values, values.copy())

    assert (same.psi, same.ks, same.ks_pvalue) == (0.0, 0.0, 1.0)
    assert same.reference_mean == same.current_mean


def test_ks_statistic_is_the_largest_gap_between_the_cdfs() -> None:
    statistic, pvalue = ks(np.array([1, 2, 3, 4]), np.array([3, 4, 5, 6]))

    assert statistic == 0.5  # at 2: half of the first sample, none of the second
    assert 0 < pvalue <= 1


def test_a_feature_drifts_only_past_both_thresholds() -> None:
    limits = Thresholds(psi=0.2, ks=0.1)

    def shift(psi_value: float, ks_value: float) -> Shift:
        return Shift(psi_value, ks_value, 0.0, 0.0, 0.0)

    assert shift(0.2, 0.1).drifted(limits)
    assert not shift(0.5, 0.09).drifted(limits)
    assert not shift(0.19, 0.5).drifted(limits)


def test_purchase_rate_of_the_customers_active_in_the_window() -> None:
    now = datetime(2025, 6, 1, tzinfo=UTC)

    def event(customer: str, kind: str, days_ago: float) -> tuple[object, ...]:
        return (0, customer, kind, int((now - timedelta(days=days_ago)).timestamp()), 0)

    events = pd.DataFrame(
        [
            event("a", "purchase", 1),
            event("a", "purchase", 59),
            event("a", "view", 10),
            event("b", "view", 3),
            event("c", "purchase", 61),  # before the window: c is not active
            event("d", "purchase", -1),  # after the moment
        ],
        columns=EVENT_COLUMNS,
    )
    log = EventLog(events, pd.DataFrame(columns=ITEM_COLUMNS))

    orders = window_orders(log, now, 60)
    rate = purchase_rate(orders, 60)

    assert orders.to_dict() == {"a": 2, "b": 0}
    assert (rate.customers, rate.orders, rate.buyers) == (2, 2, 1)
    assert rate.per_customer_30d == 0.5  # 2 orders / 2 customers / 2 months
    assert rate.share_buying == 0.5
    assert relative_change(0.5, 0.25) == -0.5
    assert relative_change(0.0, 0.25) is None


def _segment(level: str, customers: int, orders_each: float) -> tuple[pd.Series, pd.Series]:
    ids = [f"{level}-{i}" for i in range(customers)]
    total = round(orders_each * customers)
    orders = [total // customers + (i < total % customers) for i in range(customers)]
    return pd.Series(orders, index=ids), pd.Series(level, index=ids)


def _rates(size: int) -> dict[str, tuple[float, float, float, bool]]:
    """Segments x, y, z of ``size`` customers, one order each; then x and y double (a busy
    season) and z halves. Per level: (change, excess change, z, drifted)."""
    before = [_segment(level, size, 1.0) for level in "xyz"]
    after = [_segment("x", size, 2.0), _segment("y", size, 2.0), _segment("z", size, 0.5)]
    rates = segment_rates(
        pd.concat([orders for orders, _ in before]),
        pd.concat([orders for orders, _ in after]),
        pd.concat([levels for _, levels in before]),
        pd.concat([levels for _, levels in after]),
        "channel",
        30,
        min_customers=10,
    )
    limits = Thresholds(purchase_rate=0.3)
    return {s.level: (s.change, s.excess_change, s.z, s.drifted(limits)) for s in rates}


def test_a_segment_is_judged_against_the_median_segment() -> None:
    """z's own change is -50%, the median's +100%: excess 0.5 / 2 - 1 = -75%, which is
    log(0.25) / sqrt(1/100 + 1/50) = -8.0 standard errors with 100 customers."""
    rates = _rates(100)

    assert rates["x"] == pytest.approx((1.0, 0.0, 0.0, False))
    assert rates["z"][:3] == pytest.approx((-0.5, -0.75, math.log(0.25) / math.sqrt(0.03)))
    assert rates["z"][3]


def test_a_small_segment_needs_the_evidence_too() -> None:
    """The same -75% on 10 customers is -2.5 standard errors: not drift."""
    rates = _rates(10)

    assert rates["z"][:3] == pytest.approx((-0.5, -0.75, math.log(0.25) / math.sqrt(0.3)))
    assert not rates["z"][3]
    assert _rates(9) == {}  # below min_customers: no segment is checked
