"""Inputs degrade, the service does not: one small simulated shop stripped down the ways real
shops are (only purchases, no items, one product, no profiles, no browsing, refunds without
items or as negative purchases, product texts that are only codes) still trains, predicts and
explains, and its pipeline says which feature groups it left out; data no model can learn from
are refused with a message that says what is missing."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from service.ml import artifacts
from service.ml.categories import GROUP as CATEGORY_MIX
from service.ml.clv_model import SCORE_COLUMNS
from service.ml.examples import EventLog, Examples
from service.ml.explain import ADDITIVITY_TOLERANCE
from service.ml.insufficient import InsufficientDataError
from service.ml.portrait import FeaturePipeline
from service.ml.profile import GROUP as PROFILE
from service.ml.text import GROUP as PRODUCT_TEXT
from service.ml.topics import GROUP as PRODUCT_TOPICS
from service.ml.training import DataTooShortError, TrainConfig, train
from service.simulator.config import ShopConfig
from service.simulator.memory import end_of_observation, shop_log

# Each strips a simulated shop and trains, predicts and explains on it.
pytestmark = pytest.mark.slow

SHOP = ShopConfig(customers=300, days=300, horizon_days=100, seed=5, chunk_customers=300)
QUICK = TrainConfig(
    horizon_days=60,
    epochs=2,
    hidden=8,
    cutoffs=1,
    partial_step_days=0,
    sequence_length=8,
    text_components=4,
)
EXPLAINED = 24  # customers explained per shop: enough to see additivity, quick to integrate

Shop = tuple[EventLog, dict[str, Any], dict[str, set[str]]]


@pytest.fixture(scope="module")
def shop() -> Shop:
    return shop_log(SHOP)


def _purchases_only(shop: Shop) -> Shop:
    log, _, _ = shop
    events = log.events[log.events["type"] == "purchase"]
    return EventLog(events, log.items.iloc[:0]), {}, {}


def _no_items(shop: Shop) -> Shop:
    log, profiles, sources = shop
    return EventLog(log.events, log.items.iloc[:0]), profiles, sources


def _one_sku(shop: Shop) -> Shop:
    log, profiles, sources = shop
    items = log.items.assign(sku="MUG-1", name="Classic mug", category="kitchen")
    return EventLog(log.events, items), profiles, sources


def _no_profiles(shop: Shop) -> Shop:
    log, _, _ = shop
    return log, {}, {}


def _no_browsing(shop: Shop) -> Shop:
    log, profiles, sources = shop
    kept = log.events["type"].isin(["purchase", "refund"])
    items = log.items[log.items["type"].isin(["purchase", "refund"])]
    return EventLog(log.events[kept], items), profiles, sources


def _refund_events_without_items(shop: Shop) -> Shop:
    log, _, _ = shop
    events = log.events[log.events["type"].isin(["purchase", "refund"])]
    assert (events["type"] == "refund").any()
    return EventLog(events, log.items.iloc[:0]), {}, {}


def _refunds_as_negative_purchases(shop: Shop) -> Shop:
    log, profiles, sources = shop
    events = log.events.copy()
    refund = events["type"] == "refund"
    events.loc[refund, "type"] = "purchase"
    events.loc[refund, "amount_units"] = -events.loc[refund, "amount_units"]
    return EventLog(events, log.items), profiles, sources


def _code_texts(shop: Shop) -> Shop:
    """As exports of retail systems have them: a stock code for a name, a code for a category."""
    log, profiles, sources = shop
    codes = {sku: f"{85000 + n}A" for n, sku in enumerate(sorted(log.items["sku"].unique()))}
    items = log.items.assign(
        name=log.items["sku"].map(codes),
        category="C" + log.items["category"].str.len().astype(str),
    )
    return EventLog(log.events, items), profiles, sources


Strip = Callable[[Shop], Shop]
CASES: list[tuple[Strip, set[str]]] = [
    (_purchases_only, {CATEGORY_MIX, PRODUCT_TEXT, PRODUCT_TOPICS, PROFILE}),
    (_no_items, {CATEGORY_MIX, PRODUCT_TEXT, PRODUCT_TOPICS}),
    (_one_sku, {CATEGORY_MIX, PRODUCT_TEXT, PRODUCT_TOPICS}),
    (_no_profiles, {PROFILE}),
    (_no_browsing, set()),
    (_refund_events_without_items, {CATEGORY_MIX, PRODUCT_TEXT, PRODUCT_TOPICS, PROFILE}),
    (_refunds_as_negative_purchases, set()),
    (_code_texts, {PRODUCT_TEXT, PRODUCT_TOPICS}),
]


def _first(examples: Examples, n: int) -> Examples:
    return Examples(
        examples.customers[:n],
        examples.tabular.iloc[:n],
        examples.sequences[:n],
        examples.portrait.iloc[:n],
    )


@pytest.mark.parametrize(("strip", "omitted"), CASES, ids=[c[0].__name__[1:] for c in CASES])
def test_a_stripped_shop_trains_predicts_and_explains_without_what_it_lacks(
    shop: Shop, strip: Strip, omitted: set[str], tmp_path: Path
) -> None:
    log, profiles, sources = strip(shop)
    as_of = end_of_observation(SHOP)

    model = train(log, profiles, sources, as_of, QUICK)
    examples = model.examples(log, profiles, sources, as_of)
    scores = model.predict(examples)
    explained = _first(examples, EXPLAINED)
    attributions = model.explain(explained)

    pipeline = model.pipeline
    assert set(pipeline.omitted_) == omitted
    assert all(reason and "\n" not in reason for reason in pipeline.omitted_.values())
    tabular, channels = model.definitions
    assert not {d.group for d in tabular} & omitted  # a left-out group has no columns
    assert [d.name for d in tabular] == model.feature_names
    assert attributions.tabular.shape[1] == len(tabular)
    assert attributions.sequence.shape[1] == len(channels) == examples.sequences.shape[2]
    assert list(scores.columns) == list(SCORE_COLUMNS)
    assert len(scores) > 200
    assert np.isfinite(scores.to_numpy()).all()
    clv = scores["clv"].to_numpy()[:EXPLAINED]
    assert np.isfinite(attributions.totals()).all()
    assert (
        np.abs(attributions.totals() - clv) <= ADDITIVITY_TOLERANCE * np.maximum(clv, 1.0)
    ).all()
    # What is left out is saved with the model and restored from it; the schema check passes.
    artifacts.save(model, tmp_path / "model")
    loaded = artifacts.load(tmp_path / "model")
    assert loaded.pipeline.omitted_ == pipeline.omitted_
    np.testing.assert_allclose(
        loaded.predict(loaded.examples(log, profiles, sources, as_of)).to_numpy(),
        scores.to_numpy(),
        rtol=1e-5,
        atol=1e-6,
    )


def test_a_pipeline_saved_before_groups_could_be_left_out_loads_with_none_left_out(
    shop: Shop,
) -> None:
    log, profiles, sources = shop
    fitted = FeaturePipeline(text_components=4).fit(log.activity(), profiles, sources)
    old = {k: v for k, v in fitted.state().items() if k != "omitted"}

    loaded = FeaturePipeline.from_state(old)

    assert loaded.omitted_ == {}
    assert [d.name for d in loaded.definitions()] == [d.name for d in fitted.definitions()]


def _events(shop: Shop, kinds: list[str]) -> pd.DataFrame:
    log, _, _ = shop
    return log.events[log.events["type"].isin(kinds)]


def _empty(shop: Shop) -> EventLog:
    return EventLog(_events(shop, []), shop[0].items.iloc[:0])


def _browsing_only(shop: Shop) -> EventLog:
    log, _, _ = shop
    return EventLog(
        _events(shop, ["view", "session_start"]), log.items[log.items["type"] == "view"]
    )


def _refunds_only(shop: Shop) -> EventLog:
    return EventLog(_events(shop, ["refund"]), shop[0].items.iloc[:0])


def _one_order_each(shop: Shop) -> EventLog:
    orders = _events(shop, ["purchase"]).drop_duplicates("customer_id")
    return EventLog(orders, shop[0].items.iloc[:0])


def _free_orders(shop: Shop) -> EventLog:
    orders = _events(shop, ["purchase"]).assign(amount_units=0)
    return EventLog(orders, shop[0].items.iloc[:0])


REFUSED: list[tuple[Callable[[Shop], EventLog], str]] = [
    (_empty, "there are no events"),
    (_browsing_only, "0 customer\\S* .*an order"),
    (_refunds_only, "0 customer\\S* .*an order"),
    (_one_order_each, "0 of the \\d+ customers with an order ordered again"),
    (_free_orders, "0 of the \\d+ customers with an order ordered again for a positive"),
]


@pytest.mark.parametrize(("strip", "message"), REFUSED, ids=[r[0].__name__[1:] for r in REFUSED])
def test_data_no_model_can_learn_from_are_refused_with_what_is_missing(
    shop: Shop, strip: Callable[[Shop], EventLog], message: str
) -> None:
    log = strip(shop)

    # Either refusal: training may find too few buyers before the pipeline is fitted.
    with pytest.raises((InsufficientDataError, DataTooShortError), match=message):
        train(log, shop[1], shop[2], end_of_observation(SHOP), QUICK)


def test_purchases_of_negative_amount_are_read_as_refunds(shop: Shop) -> None:
    original = shop[0].activity().days
    stripped = _refunds_as_negative_purchases(shop)[0].activity().days

    assert stripped["refunds"].sum() == original["refunds"].sum() > 0
    assert stripped["refunded_units"].sum() == original["refunded_units"].sum()
    assert stripped["orders"].sum() == original["orders"].sum()
    assert stripped["spend_units"].sum() == original["spend_units"].sum()
