"""LIME attributions (``service.ml.lime_explain``): the surrogate recovers a linear function's
effects, agrees with SHAP on the feature that dominates a customer's score, attributes the same
inputs, and gives the same answer for the same customer every time."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest

from service.ml import lime_explain
from service.ml.clv_model import ClvModel
from service.ml.examples import HORIZON_FEATURE, Examples
from service.simulator.memory import end_of_observation, shop_log
from tests.conftest import SHOP

CUSTOMERS = 24


@pytest.fixture(scope="module")
def examples(shop_model: ClvModel) -> Examples:
    """The first customers with an order and the first without one: the BTYD model or the
    blend may serve the former, the network always serves the latter."""
    log, profiles, sources = shop_log(SHOP)
    as_of = end_of_observation(SHOP) + timedelta(days=SHOP.horizon_days)
    every = shop_model.examples(log, profiles, sources, as_of)
    bought = every.portrait["has_purchased"].to_numpy() > 0
    rows = np.zeros(len(bought), dtype=bool)
    rows[np.flatnonzero(bought)[: CUSTOMERS // 2]] = True
    rows[np.flatnonzero(~bought)[: CUSTOMERS // 2]] = True
    return every.subset(rows)


def test_the_surrogate_recovers_a_linear_functions_effects() -> None:
    effects = np.array([5.0, -2.0, 0.0, 1.0, 0.5, 0.0, 3.0, -1.0])
    masks = lime_explain._masks(len(effects), 1000, np.random.default_rng(0))

    surrogate, r2 = lime_explain._surrogate(masks, 10.0 + masks @ effects)

    assert masks[0].all()  # the customer, then perturbed copies
    assert not masks[1:].all(axis=1).any()
    np.testing.assert_allclose(surrogate.coef_, effects, rtol=0.01, atol=0.01)  # ridge shrinks
    assert surrogate.intercept_ == pytest.approx(10.0, abs=0.05)
    assert r2 > 0.999


def test_lime_agrees_with_shap_on_the_feature_that_dominates(
    shop_model: ClvModel, examples: Examples
) -> None:
    shap = shop_model.explain(examples)
    lime = lime_explain.explain(shop_model, examples)

    shap_all = np.abs(np.concatenate([shap.tabular, shap.sequence], axis=1))
    lime_all = np.abs(np.concatenate([lime.tabular, lime.sequence], axis=1))
    ordered = np.sort(shap_all, axis=1)
    dominated = ordered[:, -1] >= 2 * ordered[:, -2]
    assert dominated.sum() >= 4
    agree = shap_all[dominated].argmax(axis=1) == lime_all[dominated].argmax(axis=1)
    assert agree.mean() >= 0.8
    horizon = shop_model.feature_names.index(HORIZON_FEATURE)
    assert (lime.tabular[:, horizon] == 0).all()  # asked for, not explained (as in SHAP)
    served = shop_model.predict(examples)["clv"].to_numpy()
    np.testing.assert_allclose(lime.score, served)
    gap = np.abs(lime.local_prediction - served) / np.maximum(served, 1.0)
    assert np.median(gap) <= 0.25  # a local linear surrogate: near the score, not on it


def test_the_same_customer_gets_the_same_explanation(
    shop_model: ClvModel, examples: Examples
) -> None:
    two = examples.subset(np.arange(len(examples.customers)) < 2)
    reversed_order = Examples(
        two.customers[::-1], two.tabular.iloc[::-1], two.sequences[::-1].copy(), two.portrait[::-1]
    )

    first = lime_explain.explain(shop_model, two, samples=300)
    again = lime_explain.explain(shop_model, two, samples=300)
    swapped = lime_explain.explain(shop_model, reversed_order, samples=300)

    np.testing.assert_array_equal(first.tabular, again.tabular)
    np.testing.assert_array_equal(first.sequence, again.sequence)
    np.testing.assert_allclose(first.tabular, swapped.tabular[::-1], atol=1e-9)  # not by position
