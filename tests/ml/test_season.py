"""The BTYD candidates' yearly season: found where a shop has one, not where it has none, and a
forecast over a busier season that keeps the level the plain models lose."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta
from functools import cache

import numpy as np
import pandas as pd
import pytest
from scipy import integrate
from scipy.special import gammaln

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


@pytest.mark.parametrize("params", [(0.9, 40.0, 0.8, 150.0), (0.7, 92.0, 73.9, 46536.0)])
@pytest.mark.parametrize("cutoff_day", [20_356.0, 20_440.0])  # late September; 19 December
def test_with_a_cycle_the_model_equals_its_integrals(
    params: tuple[float, float, float, float], cutoff_day: float
) -> None:
    """Likelihood, P(alive), expected purchases and P(no purchase) against the integrals over
    the moment of dropping out and over the horizon taken by scipy's adaptive quad (the rates
    integrated in closed form, operational time as the test above checks it); horizons that
    cross the year's end and the peak."""
    r, alpha, s, beta = params
    season = Season(0.3 * np.cos(angle_of_day(355)), 0.3 * np.sin(angle_of_day(355)))

    def clock(start_day: float, days: float) -> float:
        return float(_Swing(np.array(angle_of_day(start_day)), np.array(days)).operational(season))

    def exact(x: float, t_x: float, age: float, horizon: float) -> tuple[float, ...]:
        first = cutoff_day - age

        def log_died_at(tau: float) -> float:
            return float(
                -(r + x) * np.log(alpha + clock(first, tau))
                + np.log(s / beta)
                + (s + 1) * np.log(beta / (beta + tau))
            )

        alive = -(r + x) * np.log(alpha + clock(first, age)) + s * np.log(beta / (beta + age))
        top = log_died_at(t_x)
        died, _ = integrate.quad(lambda tau: np.exp(log_died_at(tau) - top), t_x, age, epsrel=1e-11)
        total = np.logaddexp(alive, top + np.log(died)) if age > t_x else alive
        likelihood = gammaln(r + x) - gammaln(r) + r * np.log(alpha) + total
        exposure, lasted = alpha + clock(first, age), beta + age
        peak = lambda u: float(season.intensity(angle_of_day(cutoff_day + u)))  # noqa: E731
        rate, _ = integrate.quad(lambda u: peak(u) * (lasted / (lasted + u)) ** s, 0, horizon)
        quiet = (exposure / (exposure + clock(cutoff_day, horizon))) ** (r + x) * (
            lasted / (lasted + horizon)
        ) ** s
        drops, _ = integrate.quad(
            lambda tau: (exposure / (exposure + clock(cutoff_day, tau))) ** (r + x)
            * s / lasted * (lasted / (lasted + tau)) ** (s + 1),
            0,
            horizon,
        )  # fmt: skip
        p_alive = np.exp(alive - total)
        return likelihood, p_alive, (r + x) / exposure * rate, 1 - p_alive * (1 - quiet - drops)

    customers = np.array([(0, 0, 30), (1, 10, 20), (5, 100, 900), (80, 300, 900), (30, 3, 800)])
    x, t_x, age = (customers[:, i].astype(float) for i in range(3))
    named = dict(zip(ParetoNBDFitter.param_names, params, strict=True))
    model = SeasonalParetoNBD(named, season, np.full(len(x), float(angle_of_day(cutoff_day))))
    likelihood = model.log_likelihood(np.array(params), x, t_x, age)
    alive = model.conditional_probability_alive(x, t_x, age)
    for horizon in (180.0, 400.0):
        expected = model.expected_if_alive(horizon, x, t_x, age)
        quiet = model.conditional_probability_no_purchase(horizon, x, t_x, age)
        for i in range(len(x)):
            truth = exact(x[i], t_x[i], age[i], horizon)
            assert likelihood[i] == pytest.approx(truth[0], abs=1e-5)
            assert alive[i] == pytest.approx(truth[1], abs=1e-5)
            assert expected[i] == pytest.approx(truth[2], rel=1e-5)
            assert quiet[i] == pytest.approx(truth[3], abs=1e-5)


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
    restored = BtydBaseline.from_state(json.loads(json.dumps(seasonal.state())))  # as saved
    for read in (
        lambda model: model.predict(features[bought], days).to_numpy(),
        lambda model: model.probability_no_purchase(features[bought], days),
        lambda model: model.probability_alive(features[bought]),
    ):
        np.testing.assert_array_equal(read(restored), read(seasonal))


@pytest.mark.slow
def test_a_shop_without_seasons_or_a_short_history_gets_none() -> None:
    steady, repeats, _ = _shop(replace(SEASONAL, seasons=False))
    assert BtydBaseline("paretonbd").fit(steady, repeats).season_ is None

    seasonal, repeats, _ = _shop(SEASONAL)
    recent = repeats[repeats > repeats.max() - 150]  # five months cannot tell it from a trend
    assert BtydBaseline("paretonbd").fit(seasonal, recent).season_ is None
