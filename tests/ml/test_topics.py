"""Product topics (LDA over the product texts): they recover a simulated shop's categories, a
customer's shares are the weighted mean of their products' topic distributions, the fitted
topics survive a save, and catalogues without usable texts leave the group out."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import normalized_mutual_info_score

from service.ml.activity import Activity
from service.ml.portrait import FeaturePipeline
from service.ml.topics import GROUP, MAX_TOPICS, ProductTopics, topic_count, unusable_topics
from service.simulator.config import ShopConfig
from service.simulator.memory import shop_log

SHOP = ShopConfig(customers=300, days=300, horizon_days=100, seed=5, chunk_customers=300)


@pytest.fixture(scope="module")
def activity() -> Activity:
    log, _, _ = shop_log(SHOP)
    return log.activity()


@pytest.fixture(scope="module")
def fitted(activity: Activity) -> ProductTopics:
    return ProductTopics(topic_count(activity.catalogue)).fit(activity.catalogue)


def _catalogue(rows: list[tuple[str, str, str]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["sku", "name", "category"])


def test_topics_recover_the_simulated_shops_categories(
    activity: Activity, fitted: ProductTopics
) -> None:
    catalogue = activity.catalogue.drop_duplicates("sku", keep="last")
    products = pd.DataFrame(
        {"customer_id": catalogue["sku"], "sku": catalogue["sku"], "bought": 1, "viewed": 0}
    )  # one "customer" per product: their shares are the product's topic distribution

    distributions = fitted.transform(products, catalogue).reindex(catalogue["sku"])

    assert len(catalogue) > 400
    argmax = distributions.to_numpy().argmax(axis=1)
    assert normalized_mutual_info_score(catalogue["category"], argmax) >= 0.5
    words = {word for topic in fitted.top_words() for word, _ in topic}
    assert {"jewelry", "furniture", "grocery"} <= words  # category names lead topics
    for topic in fitted.top_words():  # most probable first
        assert [p for _, p in topic] == sorted((p for _, p in topic), reverse=True)


def test_a_customers_shares_are_the_weighted_mean_of_their_products(
    fitted: ProductTopics, activity: Activity
) -> None:
    catalogue = activity.catalogue.drop_duplicates("sku", keep="last")
    a, b = catalogue["sku"].iloc[0], catalogue["sku"].iloc[-1]
    products = pd.DataFrame(
        {
            "customer_id": ["c1", "c1", "c2", "c3"],
            "sku": [a, b, b, "UNKNOWN"],
            "bought": [1, 0, 3, 1],
            "viewed": [0, 3, 1, 0],
        }
    )
    alone = pd.DataFrame({"customer_id": [a, b], "sku": [a, b], "bought": 1, "viewed": 0})
    single = fitted.transform(alone, catalogue)

    shares = fitted.transform(products, catalogue)

    expected_c1 = (2 * single.loc[a] + 3 * single.loc[b]) / 5  # bought twice, viewed once
    np.testing.assert_allclose(shares.loc["c1"], expected_c1, atol=1e-12)
    np.testing.assert_allclose(shares.loc["c2"], single.loc[b], atol=1e-12)
    np.testing.assert_allclose(shares.loc["c3"], 0.0)  # a product outside the catalogue
    np.testing.assert_allclose(shares.loc[["c1", "c2"]].sum(axis=1), 1.0)
    assert list(shares.columns) == [d.name for d in fitted.definitions()]
    assert all(d.group == GROUP and d.unit == "share" for d in fitted.definitions())


def test_the_fitted_topics_survive_a_save(fitted: ProductTopics, activity: Activity) -> None:
    products = activity.products
    loaded = ProductTopics.from_state(json.loads(json.dumps(fitted.state())))

    np.testing.assert_allclose(
        loaded.transform(products, activity.catalogue),
        fitted.transform(products, activity.catalogue),
        atol=1e-9,
    )
    assert loaded.top_words() == fitted.top_words()


def test_the_number_of_topics_follows_the_categories_within_bounds() -> None:
    twelve = _catalogue([(f"s{i}", f"red shoe {i}", f"cat{i % 12}") for i in range(40)])
    three = _catalogue([(f"s{i}", f"blue mug {i}", f"cat{i % 3}") for i in range(40)])
    uncategorised = _catalogue([(f"s{i}", f"word{chr(97 + i)} mug", "") for i in range(16)])
    few = _catalogue([("a", "red shoe", "x"), ("b", "blue mug", "y"), ("c", "green hat", "z")])

    assert topic_count(twelve) == MAX_TOPICS
    assert topic_count(three) == 3
    assert topic_count(uncategorised.drop(columns="category")) == 4  # sqrt(16 texts)
    assert topic_count(few) == 3


@pytest.mark.parametrize(
    ("rows", "reason"),
    [
        ([], "no products"),
        ([("a", "Classic mug", "kitchen")], "one product"),
        ([("a", "85123A", "C7"), ("b", "85124B", "C7")], "distinct word"),
    ],
    ids=["no texts", "one product", "codes only"],
)
def test_catalogues_without_usable_texts_leave_the_group_out(
    rows: list[tuple[str, str, str]], reason: str
) -> None:
    catalogue = _catalogue(rows)
    assert reason in (unusable_topics(catalogue) or "")


def test_a_pipeline_without_topics_leaves_them_out_and_old_states_load(
    activity: Activity,
) -> None:
    coded = activity.catalogue.assign(name="85123A", category="C7")
    stripped = Activity(activity.days, activity.products, coded)
    pipeline = FeaturePipeline(text_components=2).fit(stripped, {}, {})

    assert GROUP in pipeline.omitted_
    assert not any(d.group == GROUP for d in pipeline.definitions())
    full = FeaturePipeline(text_components=2).fit(activity, {}, {})
    before_topics = {k: v for k, v in full.state().items() if k != "topics"}
    loaded = FeaturePipeline.from_state(before_topics)
    assert loaded.topics_ is None
    assert not any(d.group == GROUP for d in loaded.definitions())
