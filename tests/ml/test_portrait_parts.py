"""Segments, category mix, product-text embedding, profile encoding and the fitted pipeline."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest

from service.ml.activity import EventRecord, aggregate, day_number
from service.ml.categories import category_mix
from service.ml.portrait import FeaturePipeline
from service.ml.profile import ProfileEncoder
from service.ml.segments import rfm_segments
from service.ml.text import ProductTextEmbedder


@pytest.mark.parametrize(
    ("days_since", "orders", "segment"),
    [
        (0, 0, "prospect"),
        (10, 12, "champions"),
        (45, 5, "champions"),
        (20, 1, "new"),
        (50, 3, "loyal"),
        (100, 4, "loyal"),
        (100, 2, "potential"),
        (10, 2, "potential"),
        (200, 6, "at_risk"),
        (400, 3, "at_risk"),
        (150, 2, "hibernating"),
        (300, 1, "lost"),
    ],
)
def test_rfm_segments_follow_the_documented_scheme(
    days_since: int, orders: int, segment: str
) -> None:
    frame = pd.DataFrame({"days_since_last_order": [days_since], "orders_total": [orders]})
    assert rfm_segments(frame).iloc[0] == segment


CATALOGUE = pd.DataFrame(
    {
        "sku": ["R1", "R2", "H1", "N1", "N2"],
        "name": ["trail running shoe", "road running shoe", "hiking boot", "gold necklace",
                 "silver necklace"],
        "category": ["shoes", "shoes", "shoes", "jewelry", "jewelry"],
        "description": ["light shoe for running", "cushioned running shoe", "boot for hiking",
                        "necklace in gold", "necklace in silver"],
    }
)  # fmt: skip


def test_category_mix_shares_and_entropy() -> None:
    products = pd.DataFrame(
        {"customer_id": ["a", "a", "b"], "sku": ["R1", "N1", "N2"], "bought": [3, 1, 0],
         "viewed": [0, 4, 2]}
    )  # fmt: skip
    mix = category_mix(products, CATALOGUE)

    assert mix.loc["a", "bought_share__shoes"] == pytest.approx(0.75)
    assert mix.loc["a", "viewed_share__jewelry"] == 1.0
    assert mix.loc["a", "category_entropy"] == pytest.approx(
        -(0.75 * np.log(0.75) + 0.25 * np.log(0.25))
    )
    assert mix.loc["b", "bought_share__shoes"] == 0.0
    assert mix.loc["b", "categories_bought"] == 0.0


def test_text_embedding_puts_similar_products_and_customers_together() -> None:
    embedder = ProductTextEmbedder(components=2).fit(CATALOGUE)
    vectors = embedder.embed(CATALOGUE)

    def cosine(a: str, b: str) -> float:
        x, y = vectors.loc[a].to_numpy(), vectors.loc[b].to_numpy()
        return float(x @ y / (np.linalg.norm(x) * np.linalg.norm(y)))

    assert cosine("R1", "R2") > cosine("R1", "N1")
    assert cosine("N1", "N2") > cosine("N2", "R2")
    customers = embedder.transform(
        pd.DataFrame({"customer_id": ["runner", "runner", "jeweller"], "sku": ["R1", "R2", "N1"],
                      "bought": [1, 1, 1], "viewed": [0, 0, 0]}),
        CATALOGUE,
    )  # fmt: skip
    unseen = pd.DataFrame({"sku": ["R9"], "name": ["running shoe"], "category": ["shoes"]})
    new_product = embedder.embed(unseen).loc["R9"].to_numpy()
    runner = customers.loc["runner"].to_numpy()
    jeweller = customers.loc["jeweller"].to_numpy()
    assert new_product @ runner > new_product @ jeweller


def test_profile_encoding_with_missing_indicators_and_no_hashes() -> None:
    profiles = {
        "a": {"region": "north", "followers": 100, "email": "hmac-sha256:aa"},
        "b": {"region": "south", "email": "hmac-sha256:bb"},
        "c": {},
    }
    sources = {"a": {"platform", "social"}, "b": {"platform"}, "c": set()}
    encoder = ProfileEncoder().fit(profiles, sources)
    table = encoder.transform(pd.Index(["a", "b", "c"]), profiles, sources)

    assert "email__missing" not in table.columns
    assert table.loc["a", "region=north"] == 1.0
    assert table.loc["c", "region__missing"] == 1.0
    assert table.loc["a", "followers__log1p"] == pytest.approx(np.log1p(100))
    assert table.loc["b", "followers__missing"] == 1.0
    assert table.loc["a", "source__social"] == 1.0
    assert table.loc["b", "source__social"] == 0.0
    assert {d.name for d in encoder.definitions()} == set(table.columns)


def test_fitted_pipeline_gives_one_documented_finite_column_per_feature() -> None:
    t0 = datetime(2025, 1, 1, tzinfo=UTC)
    shoe = {"sku": "R1", "name": "trail running shoe", "category": "shoes"}
    necklace = {"sku": "N1", "name": "gold necklace", "category": "jewelry"}
    events = [
        EventRecord("a", "purchase", t0, Decimal("20"), [shoe]),
        EventRecord("b", "view", t0 + timedelta(days=2), None, [necklace]),
        EventRecord("c", "purchase", t0 + timedelta(days=40), Decimal("5"), None),
        # repeat orders after the cut-off: fitting refuses data with none (no model could learn)
        EventRecord("a", "purchase", t0 + timedelta(days=30), Decimal("8"), None),
        EventRecord("c", "purchase", t0 + timedelta(days=50), Decimal("6"), None),
    ]
    activity = aggregate(events)
    profiles = {"a": {"region": "north"}, "b": {"region": "south", "followers": 3}}
    sources = {"a": {"platform"}, "b": {"platform", "social"}}
    pipeline = FeaturePipeline(text_components=2).fit(activity, profiles, sources)

    table = pipeline.transform(activity, profiles, sources, day_number(t0) + 10)

    assert list(table.index) == ["a", "b"]  # c's only event comes after the cut-off
    assert list(table.columns) == [d.name for d in pipeline.definitions()]
    assert np.isfinite(table.to_numpy()).all()
    assert table.loc["a", "bought_share__shoes"] == 1.0
    assert table.loc["b", "region=south"] == 1.0
