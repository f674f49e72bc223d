"""Behavioural features against values worked out by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import numpy as np
import pytest

from service.ml.activity import EventRecord, aggregate, day_number
from service.ml.features import BEHAVIOUR_FEATURES, behaviour_features

T0 = datetime(2025, 1, 1, 9, tzinfo=UTC)


def purchase(day: float, amount: str, customer: str = "c1") -> EventRecord:
    return EventRecord(customer, "purchase", T0 + timedelta(days=day), Decimal(amount), None)


def other(kind: str, day: float, customer: str = "c1") -> EventRecord:
    return EventRecord(customer, kind, T0 + timedelta(days=day), None, None)


def features(events: list[EventRecord], as_of_day: float) -> dict[str, float]:
    as_of = day_number(T0 + timedelta(days=as_of_day))
    table = behaviour_features(aggregate(events).days, as_of)
    return table.loc["c1"].to_dict()


def test_btyd_summary_groups_orders_by_day() -> None:
    events = [
        purchase(0, "10"),
        purchase(0.2, "5"),  # same day as the first: one purchase occasion
        purchase(7, "20"),
        purchase(7.04, "10"),
        purchase(21, "12"),
    ]
    f = features(events, 30)

    # Repeat days: day 7 (30.00) and day 21 (12.00).
    assert (f["frequency"], f["recency_days"], f["age_days"]) == (2, 21, 30)
    assert f["monetary_value"] == pytest.approx(21.0)
    assert (f["orders_total"], f["spend_total"]) == (5, pytest.approx(57.0))
    assert f["average_order_value"] == pytest.approx(57 / 5)


def test_windows_gaps_and_trends() -> None:
    events = [purchase(d, "10") for d in (0, 100, 130, 190, 200)]
    f = features(events, 205)

    assert (f["orders_7d"], f["orders_30d"], f["orders_90d"], f["orders_365d"]) == (1, 2, 3, 5)
    assert f["spend_30d"] == pytest.approx(20.0)
    gaps = [100, 30, 60, 10]
    assert f["interpurchase_mean_days"] == pytest.approx(np.mean(gaps))
    assert f["interpurchase_std_days"] == pytest.approx(np.std(gaps, ddof=1))
    assert f["last_gap_days"] == 10
    assert f["days_since_last_order"] == 5
    assert f["overdue_ratio"] == pytest.approx(5 / 50)
    # Last 90 days (116..205]: 130, 190, 200 = 3; the 90 before (26..115]: 100 = 1.
    assert f["orders_trend"] == pytest.approx(np.log(4 / 2))


def test_refunds_browsing_and_calendar() -> None:
    events = [
        purchase(0, "100"),
        EventRecord("c1", "refund", T0 + timedelta(days=3), Decimal("25"), None),
        *[other("view", d) for d in (1, 1, 2, 40)],
        other("add_to_cart", 2),
        other("checkout_started", 2),
        other("checkout_started", 0),
        other("session_start", 40),
    ]
    f = features(events, 45)

    assert (f["refunds_total"], f["refunded_total"], f["refund_rate"]) == (1, 25.0, 1.0)
    assert f["refunded_share"] == pytest.approx(0.25)
    assert (f["views_total"], f["views_30d"], f["carts_total"]) == (4, 1, 1)
    assert f["view_to_purchase"] == pytest.approx(0.25)
    assert f["checkout_abandonment"] == pytest.approx(0.5)
    assert (f["active_days_total"], f["active_days_30d"]) == (5, 1)  # days 0,1,2,3,40
    assert (f["days_since_last_visit"], f["days_since_first_visit"]) == (5, 45)
    assert f["cutoff_season_sin"] ** 2 + f["cutoff_season_cos"] ** 2 == pytest.approx(1.0)


def test_a_browser_without_orders_has_zeros_not_gaps() -> None:
    f = features([other("view", 0), other("session_start", 3)], 10)

    assert f["has_purchased"] == 0
    assert f["frequency"] == f["age_days"] == f["monetary_value"] == f["view_to_purchase"] == 0
    assert f["days_since_last_visit"] == 7


def test_every_declared_feature_is_computed_finite_and_documented() -> None:
    events = [purchase(d, "10") for d in (0, 5)] + [other("view", 6, "c2")]
    table = behaviour_features(aggregate(events).days, day_number(T0) + 10)

    assert list(table.columns) == [feature.name for feature in BEHAVIOUR_FEATURES]
    assert np.isfinite(table.to_numpy()).all()
    assert all(f.description and f.unit and f.group for f in BEHAVIOUR_FEATURES)
    assert len({f.name for f in BEHAVIOUR_FEATURES}) == len(BEHAVIOUR_FEATURES)


def test_a_customers_features_do_not_depend_on_who_else_is_in_the_batch() -> None:
    """Features are computed for all customers at once: each row must still be its customer's
    alone, whatever the others and whatever the order of the day rows."""
    rng = np.random.default_rng(3)
    events = [
        purchase(float(day), f"{rng.integers(5, 90)}", customer)
        for customer in ("a", "b", "c", "d")
        for day in rng.choice(300, size=int(rng.integers(1, 9)), replace=False)
    ] + [other("view", float(rng.integers(0, 300)), customer) for customer in ("b", "e")]
    days = aggregate(events).days.sample(frac=1.0, random_state=1)
    as_of = day_number(T0) + 310
    together = behaviour_features(days, as_of)

    for customer in together.index:
        alone = behaviour_features(days[days["customer_id"] == customer], as_of)
        np.testing.assert_allclose(alone.loc[customer], together.loc[customer], rtol=1e-12)
