"""The BTYD candidates' yearly season: found where a shop has one, not where it has none, and a
forecast over a busier season that keeps the level the plain models lose."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from functools import cache

import numpy as np
import pandas as pd
import pytest
from scipy import integrate

from service.ml.activity import day_number
from service.ml.btyd.baseline import BtydBaseline
from service.ml.btyd.paretonbd import ParetoNBDFitter
from service.ml.btyd.season import YEAR, Season, SeasonalParetoNBD, _Swing, angle_of_day
from service.ml.features import behaviour_features
from service.ml.training.baselines import repeat_days
from service.simulator.config import ShopConfig
from service.simulator.memory import end_of_observation, shop_log

SEASONAL = ShopConfig(customers=3_000, days=540, horizon_days=180, seed=23)
"""The simulated shop's rates peak on 21 December (day 355), 25% above the year's average,
before promotion days; trained at its end (mid-June), the horizon runs up to the peak."""


def test_operational_time_is_the_integral_of_the_intensity() -> None:
    season = Season(0.3, -0.2)
    angle = lambda day: 2 * np.pi * (day % YEAR) / YEAR  # noqa: E731
    for start_day, days in ((20_000.0, 45.0), (20_190.0, 400.0), (20_300.5, 0.0)):
        exact, _ = integrate.quad(
            lambda u: float(season.intensity(angle(u))), start_day, start_day + days, limit=200
        )
        clock = _Swing(np.array(angle(start_day)), np.array(days)).operational(season)
        assert clock == pytest.approx(exact, rel=1e-9)
    year = _Swing(np.array(1.0), np.array(YEAR)).operational(season)  # the mean is 1
    assert year == pytest.approx(YEAR, rel=1e-12)


def test_without_a_cycle_the_seasonal_model_is_the_plain_one() -> None:
    """The quadrature over calendar days against Pareto/NBD's closed forms, from customers
    who stopped buying long ago to those who bought last on the cut-off."""
    rng = np.random.default_rng(5)
    n = 4_000
    age = rng.uniform(1, 900, n)
    x = np.where(rng.random(n) < 0.2, 0.0, rng.integers(1, 80, n).astype(float))
    t_x = np.where(x > 0, age * rng.uniform(0, 1, n) ** 0.3, 0.0)
    for params in ((0.7, 92.0, 73.9, 46_536.0), (1.1, 132.0, 0.38, 139.0), (3.0, 300.0, 0.1, 5.0)):
        plain = ParetoNBDFitter()
        plain.params_ = dict(zip(plain.param_names, params, strict=True))
        flat = SeasonalParetoNBD(plain.params_, Season(0.0, 0.0), rng.uniform(-np.pi, np.pi, n))

        np.testing.assert_allclose(
            flat.log_likelihood(np.array(params), x, t_x, age),
            plain.log_likelihood(np.array(params), x, t_x, age),
            atol=1e-5,
        )
        np.testing.assert_allclose(
            flat.conditional_probability_alive(x, t_x, age),
            plain.conditional_probability_alive(x, t_x, age),
            atol=1e-6,
        )
        for days in (30.0, 365.0):
            np.testing.assert_allclose(
                flat.expected_if_alive(days, x, t_x, age),
                plain.expected_if_alive(days, x, t_x, age),
                rtol=1e-5,
            )
            np.testing.assert_allclose(
                flat.conditional_probability_no_purchase(days, x, t_x, age),
                plain.conditional_probability_no_purchase(days, x, t_x, age),
                atol=1e-6,
            )


def test_seasonal_forecasts_match_customers_simulated_with_the_season() -> None:
    """Customers who buy at lambda * s(day) and drop out at mu per calendar day, cut off in late
    September and followed for the half-year over the late-December peak: the expected
    purchases, P(alive) and P(no purchase) of the model with the true parameters against what
    they did."""
    rng = np.random.default_rng(8)
    n, r, alpha, s, beta, horizon = 6_000, 0.9, 40.0, 0.8, 150.0, 180.0
    season = Season(0.3 * np.cos(angle_of_day(355)), 0.3 * np.sin(angle_of_day(355)))
    cutoff_day = 20_356.0  # 26 September 2025, in days since 1970
    age = rng.uniform(30, 600, n)
    lam, mu = rng.gamma(r, 1 / alpha, n), rng.gamma(s, 1 / beta, n)
    death = rng.exponential(1 / mu)
    x, t_x, future = np.zeros(n), np.zeros(n), np.zeros(n)
    peak = 1 + season.amplitude
    for i in range(n):  # thinning: candidates at lam * peak, each kept with s(day) / peak
        t = 0.0
        while True:
            t += rng.exponential(1 / (lam[i] * peak))
            if t > min(death[i], age[i] + horizon):
                break
            angle = angle_of_day(cutoff_day - age[i] + t)
            if rng.random() * peak > season.intensity(angle):
                continue
            if t <= age[i]:
                x[i], t_x[i] = x[i] + 1, t
            else:
                future[i] += 1
    model = SeasonalParetoNBD(
        {"r": r, "alpha": alpha, "s": s, "beta": beta}, season, np.full(n, angle_of_day(cutoff_day))
    )

    expected = model.conditional_expected_number_of_purchases_up_to_time(horizon, x, t_x, age)
    assert expected.sum() == pytest.approx(future.sum(), rel=0.04)
    alive = model.conditional_probability_alive(x, t_x, age)
    quiet = model.conditional_probability_no_purchase(horizon, x, t_x, age)
    for predicted, observed in ((alive, death > age), (quiet, future == 0)):
        assert abs(predicted.mean() - observed.mean()) < 0.02
        for low, high in ((0.0, 0.5), (0.5, 0.8), (0.8, 1.01)):
            band = (predicted >= low) & (predicted < high)
            assert abs(predicted[band].mean() - observed[band].mean()) < 0.05


def test_a_saved_bgnbd_with_a_season_asks_to_be_retrained() -> None:
    """Models trained while BG/NBD took a season too: their forecasts would now be read
    without it, so they are refused rather than served differently."""
    state = {
        "count_model": "bgnbd",
        "counts": {"r": 0.8, "alpha": 20.0, "a": 0.8, "b": 2.5},
        "spend": {"p": 6.0, "q": 4.0, "v": 15.0},
        "season": {"c": 0.2, "d": 0.1, "statistic": 50.0},
    }
    with pytest.raises(ValueError, match="retrain"):
        BtydBaseline.from_state(state)
    assert BtydBaseline.from_state({**state, "season": None}).season_ is None


@cache
def _shop(config: ShopConfig) -> tuple[pd.DataFrame, np.ndarray, pd.Series]:
    """(the portrait at the end of observation, the days of repeat purchases by then, each
    customer's spend in the horizon after)."""
    log, _, _ = shop_log(config)
    as_of = end_of_observation(config)
    past = log.until(as_of)
    activity = past.activity()
    features = behaviour_features(activity.days, day_number(as_of))
    after = log.spend_between(as_of, as_of + timedelta(days=config.horizon_days))
    return features, repeat_days(activity, as_of), after.reindex(features.index, fill_value=0.0)


@pytest.mark.slow
def test_a_seasonal_shop_gets_its_season_and_a_forecast_that_keeps_the_level() -> None:
    features, repeats, actual = _shop(SEASONAL)
    bought = features["has_purchased"].to_numpy() > 0
    days = SEASONAL.horizon_days

    seasonal = BtydBaseline("paretonbd").fit(features, repeats)
    plain = BtydBaseline("paretonbd").fit(features)

    assert seasonal.season_ is not None
    assert BtydBaseline("bgnbd").fit(features, repeats).season_ is None  # Pareto/NBD's only
    assert abs(seasonal.season_.peak_day_of_year - 355) <= 25
    assert 0.15 <= seasonal.season_.amplitude <= 0.45
    truth = actual[bought].sum()
    with_season = seasonal.predict(features[bought], days)["btyd_clv"].sum() / truth - 1
    without = plain.predict(features[bought], days)["btyd_clv"].sum() / truth - 1
    assert abs(with_season) < abs(without) - 0.03  # a busier half-year ahead than behind
    restored = BtydBaseline.from_state(seasonal.state())
    np.testing.assert_allclose(
        restored.predict(features[bought], days).to_numpy(),
        seasonal.predict(features[bought], days).to_numpy(),
    )


@pytest.mark.slow
def test_a_shop_without_seasons_or_a_short_history_gets_none() -> None:
    steady, repeats, _ = _shop(replace(SEASONAL, seasons=False))
    assert BtydBaseline("paretonbd").fit(steady, repeats).season_ is None

    seasonal, repeats, _ = _shop(SEASONAL)
    recent = repeats[repeats > repeats.max() - 150]  # five months cannot tell it from a trend
    assert BtydBaseline("paretonbd").fit(seasonal, recent).season_ is None
