"""The forecast's pieces as plain functions: periods, the weekday rhythm, the bottom-up curves
against hand computations, and acquisitions."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from service.forecasts.existing import ScoredCustomers, daily_orders, existing_daily, repeat_curve
from service.forecasts.newcomers import forecast_acquisitions
from service.forecasts.periods import periods
from service.forecasts.rhythm import spread_by_weekday
from service.ml.activity import EPOCH
from service.ml.btyd.bgnbd import BetaGeoFitter
from service.ml.btyd.paretonbd import ParetoNBDFitter

MONDAY = (date(2026, 3, 2) - EPOCH).days


def fitted_bgnbd() -> BetaGeoFitter:
    fitter = BetaGeoFitter()
    fitter.params_ = {"r": 0.8, "alpha": 60.0, "a": 0.9, "b": 3.0}
    return fitter


def tiny_shop(offset: float = 0.0) -> ScoredCustomers:
    """Three customers with an order: a regular, a one-off and one long quiet."""
    return ScoredCustomers(
        expected_orders=np.array([2.5, 0.4, 0.05]),
        order_value=np.array([40.0, 100.0, 20.0]),
        horizon_days=np.array([90, 90, 90]),
        offset_days=np.full(3, offset),
        frequency=np.array([6.0, 0.0, 2.0]),
        recency_days=np.array([200.0, 0.0, 30.0]),
        age_days=np.array([210.0, 15.0, 400.0]),
        units_per_order=np.array([2.0, 1.0, 3.0]),
        shares=np.array([[0.5, 0.5], [1.0, 0.0], [0.0, 1.0]]),
    )


def test_weeks_run_monday_to_sunday_and_months_follow_the_calendar() -> None:
    weeks = periods(MONDAY + 3, 12, "week")  # Thursday 5 March, 12 days
    months = periods((date(2026, 1, 30) - EPOCH).days, 31, "month")

    assert [
        (s.isoformat(), e.isoformat()) for s, e in zip(weeks.starts, weeks.ends, strict=True)
    ] == [
        ("2026-03-05", "2026-03-08"),
        ("2026-03-09", "2026-03-15"),
        ("2026-03-16", "2026-03-16"),
    ]
    assert list(weeks.days()) == [4, 7, 1]
    assert [s.isoformat() for s in months.starts] == ["2026-01-30", "2026-02-01", "2026-03-01"]
    assert list(months.days()) == [2, 28, 1]
    assert weeks.sum(np.ones(12)).tolist() == [4.0, 7.0, 1.0]


def test_the_weekday_rhythm_moves_orders_between_days_but_keeps_each_week() -> None:
    weights = np.array([1.0, 1.0, 1.0, 1.0, 1.0, 2.0, 0.0])  # busy Saturdays, shut Sundays
    daily = np.linspace(1.0, 2.0, 17)

    spread = spread_by_weekday(daily, MONDAY, weights)

    assert spread[6] == spread[13] == 0.0
    assert spread[5] == pytest.approx(2 * spread[4])
    for start in range(0, 17, 7):
        assert spread[start : start + 7].sum() == pytest.approx(daily[start : start + 7].sum())


@pytest.mark.parametrize("fitter", [fitted_bgnbd(), None])
def test_over_the_horizon_each_customer_gets_exactly_their_expected_orders(
    fitter: BetaGeoFitter | None,
) -> None:
    if fitter is None:
        fitter = ParetoNBDFitter()
        fitter.params_ = {"r": 0.8, "alpha": 60.0, "s": 0.7, "beta": 300.0}
    shop = tiny_shop()

    orders = daily_orders(shop, slice(None), fitter, 90)
    part = existing_daily(shop, fitter, 90, order_value_cv2=0.5)

    assert orders.shape == (3, 90)
    np.testing.assert_allclose(orders.sum(axis=1), shop.expected_orders, rtol=1e-9)
    assert part.revenue.sum() == pytest.approx((shop.expected_orders * shop.order_value).sum())
    # compound Poisson: sum of mu * v^2 * (1 + cv^2)
    expected_variance = (shop.expected_orders * shop.order_value**2 * 1.5).sum()
    assert part.revenue_variance.sum() == pytest.approx(expected_variance)
    np.testing.assert_allclose(part.category_revenue.sum(axis=0), part.revenue, rtol=1e-9)
    assert part.category_units.sum() == pytest.approx(
        (shop.expected_orders * shop.units_per_order).sum()
    )
    # a BTYD curve is concave: the regular's orders thin out over the horizon
    assert orders[0, :7].sum() > orders[0, -7:].sum() > 0


def test_a_score_older_than_the_forecast_counts_only_what_is_left_of_its_horizon() -> None:
    fitter = fitted_bgnbd()
    fresh = daily_orders(tiny_shop(), slice(None), fitter, 120)
    older = daily_orders(tiny_shop(offset=30), slice(None), fitter, 90)

    np.testing.assert_allclose(older, fresh[:, 30:], rtol=1e-9)
    # the 60 days left of its 90-day horizon hold what it expected after the first 30
    assert older[:, :60].sum(axis=1) == pytest.approx(
        tiny_shop().expected_orders - fresh[:, :30].sum(axis=1)
    )


def test_an_undefined_curve_spreads_the_orders_evenly_over_the_horizon() -> None:
    fitter = fitted_bgnbd()
    fitter.params_ = {**fitter.params_, "a": 1.0}  # a - 1 = 0 divides: no finite curve

    orders = daily_orders(tiny_shop(), slice(None), fitter, 90)

    np.testing.assert_allclose(orders, np.repeat(tiny_shop().expected_orders[:, None] / 90, 90, 1))


def test_a_new_customer_repeats_along_the_curve_of_a_customer_just_acquired() -> None:
    fitter = fitted_bgnbd()

    repeats = repeat_curve(fitter, 365)

    assert repeats.sum() == pytest.approx(
        float(fitter.expected_number_of_purchases_up_to_time(365.0))
    )
    assert repeats[0] > repeats[-1] > 0


def test_acquisitions_follow_the_weekly_series_with_a_simulated_interval() -> None:
    rng = np.random.default_rng(1)
    weekly = rng.poisson(np.linspace(20, 40, 60)).astype(float)  # a growing shop

    found = forecast_acquisitions(weekly, weekly * 50.0, 13, 500, seed=0)

    assert found.model["model"] == "ETS(A,Ad,N)"
    assert found.model["seasonal"] is False
    assert found.mean.shape == (13,)
    assert 30 < found.mean[0] < 50
    assert found.paths.shape == (13, 500)
    low, high = np.quantile(found.paths, [0.1, 0.9], axis=1)
    assert (low < found.mean).all()
    assert (found.mean < high).all()
    assert found.first_order_value == pytest.approx(50.0, rel=0.01)
