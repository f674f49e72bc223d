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
from service.ml.btyd.season import YEAR, Season
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
    for end_day, days in ((20_000.0, 45.0), (20_190.0, 400.0), (20_300.5, 0.0)):
        exact, _ = integrate.quad(
            lambda u: float(season.intensity(angle(u))), end_day - days, end_day, limit=200
        )
        assert season.elapsed(angle(end_day), np.array(days)) == pytest.approx(exact, rel=1e-9)
    year = season.elapsed(np.array(1.0), np.array(YEAR))  # any whole year: the mean is 1
    assert year == pytest.approx(YEAR, rel=1e-12)


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
    assert BtydBaseline("bgnbd").fit(steady, repeats).season_ is None

    seasonal, repeats, _ = _shop(SEASONAL)
    recent = repeats[repeats > repeats.max() - 150]  # five months cannot tell it from a trend
    assert BtydBaseline("paretonbd").fit(seasonal, recent).season_ is None
