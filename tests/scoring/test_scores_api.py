"""The scoring API over real HTTP (ASGI): every field of a score, stored and computed answers,
explanations that add up, 404/422 cases, batches and their limits, feature importance."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select, text

from service.db.session import make_session_factory
from service.events.models import Event
from service.main import create_app
from service.ml.explain import ADDITIVITY_TOLERANCE
from tests.conftest import KeyFactory, ScoredShop, bearer, top_customer
from tests.prometheus import sample


def _browser_without_orders(db: Engine) -> str:
    with make_session_factory(db)() as session:
        buyers = select(Event.customer_id).where(Event.type == "purchase")
        query = select(func.min(Event.customer_id)).where(Event.customer_id.not_in(buyers))
        return str(session.scalar(query))


@pytest.fixture
def api(scored_shop: ScoredShop, make_key: KeyFactory) -> Any:
    headers = bearer(make_key("read", "ingest"))
    with TestClient(create_app(scored_shop.settings)) as client:
        yield client, headers


def _adds_up(score: dict[str, Any]) -> bool:
    explanation = score["explanation"]
    total = explanation["base_value"] + sum(f["contribution"] for f in explanation["features"])
    return abs(total - score["clv"]) <= ADDITIVITY_TOLERANCE * max(score["clv"], 1.0)


def test_a_stored_score_has_every_field(api: Any, scored_shop: ScoredShop, db: Engine) -> None:
    client, headers = api
    customer = top_customer(db)
    response = client.get(f"/v1/customers/{customer}/clv", headers=headers)

    assert response.status_code == 200
    score = response.json()
    assert score["source"] == "stored"
    assert score["model_version"] == scored_shop.version
    assert score["customer_id"] == customer
    assert score["horizon_days"] == 90
    assert score["currency"] == "USD"
    # served stored only while younger than CLV_SCORE_MAX_AGE_HOURS (the snapshot the test's
    # database was cloned from may have been scored minutes before, early in a long run)
    age = datetime.now(UTC) - datetime.fromisoformat(score["as_of"])
    assert timedelta(0) <= age < timedelta(hours=scored_shop.settings.score_max_age_hours)
    assert score["computed_at"] >= score["as_of"]
    assert 0 <= score["p10"] <= score["p50"] <= score["p90"]
    assert score["clv"] > 0
    assert 0 <= score["purchase_probability"] <= 1
    assert 0 <= score["probability_alive"] <= 1
    assert math.isclose(score["churn_probability"], 1 - score["purchase_probability"], abs_tol=1e-4)
    assert score["churn_risk"] in {"low", "medium", "high"}
    assert score["expected_order_value"] > 0
    assert math.isclose(
        score["expected_orders"], score["clv"] / score["expected_order_value"], rel_tol=1e-3
    )
    assert score["value_tier"] == 10  # the most valuable customer is in the top decile
    assert score["btyd_clv"] >= 0
    assert score["cold_start"] is False
    assert score["explanation"] is None
    profile = client.get(f"/v1/customers/{customer}", headers=headers).json()
    assert profile["latest_score"]["clv"] == score["clv"]
    assert profile["latest_score"]["trigger"] == "model"
    next_order = score["expected_next_order_date"]
    if score["purchase_probability"] >= 0.5:
        as_of = datetime.fromisoformat(score["as_of"]).date()
        assert as_of <= date.fromisoformat(next_order) <= as_of + timedelta(days=90)
    else:
        assert next_order is None


def test_explanations_add_up_and_name_every_feature(api: Any, db: Engine) -> None:
    client, headers = api
    customer = top_customer(db)
    stored = client.get(f"/v1/customers/{customer}/clv?explain=true", headers=headers).json()
    computed = client.get(
        f"/v1/customers/{customer}/clv?explain=true&horizon_days=30", headers=headers
    ).json()

    for score in (stored, computed):
        explanation = score["explanation"]
        assert _adds_up(score)
        assert explanation["tolerance"] == ADDITIVITY_TOLERANCE
        features = explanation["features"]
        assert len({f["name"] for f in features}) == len(features) > 100
        assert all(f["description"] and f["unit"] and f["group"] for f in features)
        by_group: dict[str, float] = {}
        for feature in features:
            by_group[feature["group"]] = by_group.get(feature["group"], 0) + feature["contribution"]
        for group in explanation["groups"]:
            assert math.isclose(group["contribution"], by_group[group["group"]], abs_tol=1e-3)
        assert {"purchase history", "recent activity sequence", "profile"} <= set(by_group)
        assert by_group["horizon"] == 0  # asked for, not explained
        magnitudes = [abs(f["contribution"]) for f in features]
        assert magnitudes == sorted(magnitudes, reverse=True)
    assert stored["source"] == "stored"
    assert computed["source"] == "computed"
    frequency = next(f for f in stored["explanation"]["features"] if f["name"] == "orders_total")
    assert frequency["value"] >= 2


def test_other_horizons_and_moments_are_computed_and_what_cannot_be_served_is_422(
    api: Any, scored_shop: ScoredShop, db: Engine
) -> None:
    client, headers = api
    customer = top_customer(db)
    url = f"/v1/customers/{customer}/clv"
    full = client.get(url, headers=headers).json()
    shorter = client.get(url, params={"horizon_days": 30}, headers=headers).json()
    yesterday = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    earlier = client.get(url, params={"as_of": yesterday}, headers=headers)

    assert shorter["source"] == "computed"
    assert shorter["horizon_days"] == 30
    assert 0 < shorter["clv"] < full["clv"]
    assert earlier.status_code == 200
    assert earlier.json()["as_of"].startswith(yesterday[:19])

    too_long = client.get(url, params={"horizon_days": 91}, headers=headers)
    assert too_long.status_code == 422
    assert too_long.json()["details"] == {"horizon_days": {"min": 1, "max": 90}}
    assert "1 to 90 days" in too_long.json()["message"]
    before_training = client.get(url, params={"as_of": "2024-06-01T00:00:00Z"}, headers=headers)
    assert before_training.status_code == 422
    assert "end of its training data" in before_training.json()["message"]
    future = (datetime.now(UTC) + timedelta(days=2)).isoformat()
    assert client.get(url, params={"as_of": future}, headers=headers).status_code == 422
    naive = client.get(url, params={"as_of": "2026-01-01T00:00:00"}, headers=headers)
    assert naive.status_code == 422
    assert naive.json()["code"] == "validation_error"
    assert client.get(url, params={"horizon_days": 0}, headers=headers).status_code == 422


def test_unknown_customers_404_and_customers_without_orders_get_a_cold_start(
    api: Any, db: Engine
) -> None:
    client, headers = api
    unknown = client.get("/v1/customers/no-such-customer/clv", headers=headers)
    assert unknown.status_code == 404
    assert unknown.json()["code"] == "not_found"

    browser = client.get(
        f"/v1/customers/{_browser_without_orders(db)}/clv?explain=true", headers=headers
    ).json()
    assert browser["cold_start"] is True
    assert _adds_up(browser)

    client.patch(
        "/v1/customers/prospect-1",
        json={"source": "crm", "attributes": {"acquisition_channel": "referral"}},
        headers=headers,
    )
    prospect = client.get("/v1/customers/prospect-1/clv?explain=true", headers=headers).json()
    assert prospect["cold_start"] is True
    assert prospect["clv"] >= 0
    assert _adds_up(prospect)
    values = {f["name"]: f["value"] for f in prospect["explanation"]["features"]}
    assert values["acquisition_channel=referral"] == 1
    assert values["orders_total"] == 0


def test_batches_answer_in_order_list_the_unknown_and_have_limits(api: Any, db: Engine) -> None:
    client, headers = api
    top = top_customer(db)
    browser = _browser_without_orders(db)
    ids = [top, "ghost", browser, top]
    response = client.post("/v1/clv/batch", json={"customer_ids": ids}, headers=headers)
    explained = client.post(
        "/v1/clv/batch",
        json={"customer_ids": [top, browser], "explain": True, "horizon_days": 60},
        headers=headers,
    )
    too_many = client.post(
        "/v1/clv/batch",
        json={"customer_ids": [f"c-{i}" for i in range(10_001)]},
        headers=headers,
    )
    empty = client.post("/v1/clv/batch", json={"customer_ids": []}, headers=headers)

    assert response.status_code == 200
    body = response.json()
    assert [s["customer_id"] for s in body["scores"]] == [top, browser]
    assert body["not_found"] == ["ghost"]
    single = client.get(f"/v1/customers/{top}/clv", headers=headers).json()
    assert body["scores"][0] == single
    assert explained.status_code == 200
    assert all(_adds_up(s) and s["horizon_days"] == 60 for s in explained.json()["scores"])
    assert too_many.status_code == 413
    assert too_many.json()["code"] == "payload_too_large"
    assert empty.status_code == 422


def test_global_feature_importance_as_json_and_png(
    explained_shop: ScoredShop, make_key: KeyFactory
) -> None:
    headers = bearer(make_key("read"))
    with TestClient(create_app(explained_shop.settings)) as client:
        report = client.get("/v1/reports/feature-importance?sample=200", headers=headers)
        chart = client.get("/v1/reports/feature-importance.png?top=10", headers=headers)

    assert report.status_code == 200
    body = report.json()
    assert body["customers"] == 200
    means = [f["mean_abs_contribution"] for f in body["features"]]
    assert means == sorted(means, reverse=True)
    assert means[0] > 0
    assert {g["group"] for g in body["groups"]} >= {"purchase history", "profile"}
    assert chart.status_code == 200
    assert chart.headers["content-type"] == "image/png"
    assert chart.content.startswith(b"\x89PNG")


def test_int8_serves_unexplained_computed_scores_and_explanations_stay_float(
    scored_shop: ScoredShop, db: Engine, make_key: KeyFactory
) -> None:
    headers = bearer(make_key("read"))
    customer = _browser(db)  # scored by the network, whatever serves customers with an order
    url = f"/v1/customers/{customer}/clv?horizon_days=30"
    with TestClient(create_app(scored_shop.settings)) as client:
        float_score = client.get(url, headers=headers).json()
    int8_settings = scored_shop.settings.model_copy(update={"quantize": "int8"})
    with TestClient(create_app(int8_settings)) as client:
        int8_score = client.get(url, headers=headers).json()
        explained = client.get(url + "&explain=true", headers=headers).json()

    assert int8_score["clv"] != float_score["clv"]  # another network answered
    assert math.isclose(int8_score["clv"], float_score["clv"], rel_tol=0.1)
    assert explained["clv"] == float_score["clv"]  # explained: the float network
    assert _adds_up(explained)


def _browser(db: Engine) -> str:
    """A customer with events but no order yet."""
    with db.connect() as connection:
        return str(
            connection.execute(
                text(
                    "SELECT customer_id FROM events GROUP BY customer_id "
                    "HAVING SUM(CASE WHEN type = 'purchase' THEN 1 ELSE 0 END) = 0 "
                    "ORDER BY COUNT(*) DESC LIMIT 1"
                )
            ).scalar_one()
        )


def test_explained_batches_are_capped_lower(api: Any) -> None:
    client, headers = api
    ids = [f"c-{i}" for i in range(1_001)]
    response = client.post(
        "/v1/clv/batch", json={"customer_ids": ids, "explain": True}, headers=headers
    )
    assert response.status_code == 413
    assert "explain=true" in response.json()["message"]


def test_metrics_time_scoring_and_explanations_and_count_jobs(api: Any, db: Engine) -> None:
    client, headers = api
    customer = top_customer(db)
    before = client.get("/metrics").text
    client.get(f"/v1/customers/{customer}/clv?explain=true&horizon_days=30", headers=headers)
    client.get(f"/v1/customers/{customer}/clv", headers=headers)  # stored: nothing computed
    after = client.get("/metrics").text

    def grew(name: str, **labels: str) -> float:
        return sample(after, name, **labels) - sample(before, name, **labels)

    assert grew("clv_scoring_duration_seconds_count", purpose="request") == 1
    assert grew("clv_customers_scored_total", purpose="request") == 1
    assert grew("clv_explanation_duration_seconds_count") == 1
    assert grew("clv_customers_explained_total") == 1
    # The scored shop's set-up ran the first champion's rescoring job.
    assert sample(after, "clv_jobs", kind="rescore", status="succeeded") == 1
