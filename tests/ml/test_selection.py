"""What serves is chosen on a time-later window: the rule, the blend, the interval bands, a
crippled network kept out, churn that matches what simulated customers do, and scores that move
the way people expect when a customer orders."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from service.ml.activity import day_number
from service.ml.btyd.baseline import BtydBaseline
from service.ml.clv_model import ClvModel
from service.ml.examples import Examples
from service.ml.features import behaviour_features
from service.ml.selection import BTYD_CANDIDATES, IntervalBands, QuantileMap, choose
from service.ml.training import TrainConfig, train
from service.simulator.memory import SMALL_SHOP, end_of_observation, shop_log
from tests.ml.test_training import FAST

# Trained models judged on simulated shops: statistics, not units.
pytestmark = pytest.mark.slow

STEADY_SHOP = replace(SMALL_SHOP, seasons=False)
"""Without seasons, so the future behaves like the past: calibration is testable on it."""


def metrics(gini: float, mape: float, aggregate: float) -> dict[str, float]:
    return {"normalized_gini": gini, "decile_mape": mape, "aggregate_revenue_error": aggregate}


def test_the_best_btyd_candidate_serves_unless_another_is_no_worse_on_every_check() -> None:
    btyd = {"bgnbd": metrics(0.60, 0.30, -0.10), "paretonbd": metrics(0.62, 0.25, -0.20)}

    served, reasons = choose({**btyd, "deep": metrics(0.70, 0.26, 0.05)})
    assert served == "paretonbd"
    assert "decile MAPE 0.2600 worse than paretonbd's 0.2500" in reasons["deep"]

    served, _ = choose({**btyd, "deep": metrics(0.70, 0.20, 0.05), "blend": metrics(0.66, 0.1, 0)})
    assert served == "deep"  # both qualify; the higher Gini serves

    tied = metrics(0.65, 0.2, -0.20 - 1e-12)  # the blend's total is its anchor's, but rounded
    served, _ = choose({**btyd, "blend": tied})
    assert served == "blend"

    served, reasons = choose({**btyd, "deep": metrics(0.70, float("nan"), 0.05)})
    assert served == "paretonbd"
    assert "undefined" in reasons["deep"]

    broken = {"bgnbd": metrics(0.5, 0.3, float("nan"))}  # a BTYD total that is not a number
    served, reasons = choose({**broken, "deep": metrics(0.5, 0.3, 5.0)})
    assert served == "bgnbd"  # +500% is not shown to be no worse
    assert "not comparable: bgnbd's is undefined" in reasons["deep"]


def test_the_blend_ranks_as_the_network_at_the_btyd_level_and_never_reverses_an_order() -> None:
    rng = np.random.default_rng(0)
    deep, btyd = rng.lognormal(3, 2, 5000), rng.lognormal(3, 1, 5000)

    blend = QuantileMap.fit(deep, btyd, 90).apply(deep, 90)

    assert blend.sum() == pytest.approx(btyd.sum(), rel=1e-9)
    assert np.all(np.diff(blend[np.argsort(deep)]) >= 0)
    levels = np.linspace(0.1, 0.9, 9)
    np.testing.assert_allclose(np.quantile(blend, levels), np.quantile(btyd, levels), rtol=0.02)


def test_interval_bands_cover_eighty_percent_where_many_customers_buy_nothing() -> None:
    rng = np.random.default_rng(1)
    predicted = rng.lognormal(3, 1, 20000)
    buys = rng.random(20000) < 0.4
    actual = np.where(buys, predicted / 0.4 * rng.lognormal(-0.5, 1, 20000), 0.0)

    p10, p50, p90 = IntervalBands.fit(predicted[:10000], actual[:10000], 90).apply(
        predicted[10000:], 90
    )

    covered = (actual[10000:] >= p10) & (actual[10000:] <= p90)
    assert covered.mean() == pytest.approx(0.8, abs=0.02)
    assert np.all((p10 <= p50) & (p50 <= p90))


@pytest.fixture(scope="module")
def steady() -> tuple:  # type: ignore[type-arg]
    return shop_log(STEADY_SHOP)


@pytest.fixture(scope="module")
def steady_model(steady: tuple) -> ClvModel:  # type: ignore[type-arg]
    log, profiles, sources = steady
    as_of = end_of_observation(STEADY_SHOP)
    return train(log.until(as_of), profiles, sources, as_of, TrainConfig(90, **FAST))


@pytest.fixture(scope="module")
def steady_scores(steady: tuple, steady_model: ClvModel) -> tuple[Examples, pd.DataFrame]:  # type: ignore[type-arg]
    log, profiles, sources = steady
    examples = steady_model.examples(log, profiles, sources, end_of_observation(STEADY_SHOP))
    return examples, steady_model.predict(examples)


def test_a_crippled_network_is_not_chosen(steady: tuple) -> None:  # type: ignore[type-arg]
    log, profiles, sources = steady
    as_of = end_of_observation(STEADY_SHOP)
    crippled = TrainConfig(90, **{**FAST, "epochs": 1}, learning_rate=0.0)

    model = train(log.until(as_of), profiles, sources, as_of, crippled)

    validation = model.report.validation
    assert validation.served in BTYD_CANDIDATES
    assert "normalised Gini" in validation.reasons["deep"]
    assert "normalised Gini" in validation.reasons["blend"]


def test_the_interval_covers_eighty_percent_of_what_customers_then_spend(
    steady: tuple,  # type: ignore[type-arg]
    steady_model: ClvModel,
    steady_scores: tuple[Examples, pd.DataFrame],
) -> None:
    log, _, _ = steady
    as_of = end_of_observation(STEADY_SHOP)
    examples, scores = steady_scores
    spend = log.spend_between(as_of, as_of + timedelta(days=90))
    actual = spend.reindex(examples.customers, fill_value=0.0).to_numpy()

    covered = (actual >= scores["p10"]) & (actual <= scores["p90"])
    assert 0.75 <= steady_model.report.validation.p10_p90_coverage <= 0.85
    assert 0.75 <= covered.mean() <= 0.85


def test_one_order_customers_get_a_graded_probability_alive(
    steady_scores: tuple[Examples, pd.DataFrame],
) -> None:
    examples, scores = steady_scores
    one_order = (examples.portrait["orders_total"] == 1).to_numpy()

    alive = scores["probability_alive"][one_order]
    assert alive.between(0, 1).all()
    assert alive.nunique() > 50
    assert (alive < 0.99).mean() > 0.5  # not "certainly alive" for want of a second order


def test_churn_matches_the_share_of_simulated_customers_with_no_order_by_decile() -> None:
    shop = replace(SMALL_SHOP, customers=6_000, seasons=False, seed=9)
    log, _, _ = shop_log(shop)
    as_of = end_of_observation(shop)
    features = behaviour_features(log.until(as_of).activity().days, day_number(as_of))
    buyers = features[features["has_purchased"] > 0]
    spend = log.spend_between(as_of, as_of + timedelta(days=90))
    no_order = spend.reindex(buyers.index, fill_value=0.0).to_numpy() <= 0

    churn = BtydBaseline("paretonbd").fit(features).probability_no_purchase(buyers, 90)

    decile = pd.qcut(pd.Series(churn).rank(method="first"), 10, labels=False).to_numpy()
    for d in range(10):
        assert abs(churn[decile == d].mean() - no_order[decile == d].mean()) <= 0.05


@pytest.mark.parametrize("share", [1.0, 0.3, 3.0], ids=["their average", "cheap", "dear"])
@pytest.mark.parametrize("served", ["paretonbd", "bgnbd", "blend", "deep"])
def test_an_order_never_lowers_expected_orders_or_probability_alive(
    steady: tuple,  # type: ignore[type-arg]
    steady_model: ClvModel,
    served: str,
    share: float,
) -> None:
    """Every customer with an order gets one more at the scoring moment, of their own average
    value, a third of it (the demo's case) or three times it. Expected orders and P(alive) never
    fall, and value falls only with the expected order value: by structure where a BTYD model
    serves, by the floor at the customer before the day's orders where the network ranks
    (``ClvModel._floored``). The network alone lowered the expected orders of 26 of these 970
    customers given an order of their average value (by up to 21%), and of 34 under the blend
    (39%); a dear order lowers them for most (docs/models.md)."""
    assert steady_model.serving is not None
    model = replace(steady_model, serving=replace(steady_model.serving, served=served))
    log, profiles, sources = steady
    as_of = end_of_observation(STEADY_SHOP)
    past = log.until(as_of)
    examples = model.examples(past, profiles, sources, as_of)
    buyers = examples.customers[examples.portrait["has_purchased"].to_numpy() > 0]
    average = examples.portrait.loc[buyers, "average_order_value"].to_numpy()
    after = past.with_orders(buyers, average * share, as_of)
    before = model.predict(examples).loc[buyers]
    now = model.predict(model.examples(after, profiles, sources, as_of)).loc[buyers]

    orders = now["expected_orders"] / before["expected_orders"] - 1
    value = now["expected_order_value"] / before["expected_order_value"] - 1
    clv = now["clv"] / before["clv"] - 1
    print(
        f"{served}, {share:.0%} of their average: expected orders rose for "
        f"{(orders > 1e-9).sum()} of {len(buyers)} (least {orders.min():+.2e}); order value "
        f"fell for {(value < -1e-9).sum()}"
    )
    assert (now["probability_alive"] >= before["probability_alive"] - 1e-9).all()
    # to the network's float32 rounding: the customer before the order is scored in a batch
    # of prefixes, beside other rows than the first time
    assert (orders >= -1e-6).all()
    assert (clv >= value - 1e-6).all()
