"""What a served money value means (issue 18, score fields): historic, predicted and total clv,
the mean days between purchase days, and CLV_MARGIN / CLV_ANNUAL_DISCOUNT_RATE, checked against
computations by hand from the stored events."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from service.db.session import make_session_factory
from service.events.models import Event
from service.main import create_app
from service.ml.explain import ADDITIVITY_TOLERANCE
from service.scoring.value import ValueTerms
from tests.conftest import KeyFactory, ScoredShop, bearer, top_customer

MARGIN, RATE = 0.4, 0.1


def test_discounting_is_the_mean_present_value_of_spend_spread_over_the_horizon() -> None:
    days = np.linspace(0.0, 365.0, 100_001)
    by_hand = float(np.mean(1.1 ** (-days / 365.0)))  # 10% a year, each day's spend alike

    terms = ValueTerms(margin=MARGIN, annual_discount_rate=RATE)

    assert math.isclose(terms.discount(365), by_hand, rel_tol=1e-6)
    assert math.isclose(terms.predicted(365), MARGIN * by_hand, rel_tol=1e-6)
    assert terms.historic() == MARGIN
    assert ValueTerms().predicted(365) == 1.0
    assert terms.discount(30) > terms.discount(365)  # a nearer horizon loses less


def _served(scored_shop: ScoredShop, make_key: KeyFactory, customer: str, **terms: Any) -> Any:
    settings = scored_shop.settings.model_copy(update=terms)
    with TestClient(create_app(settings)) as client:
        response = client.get(
            f"/v1/customers/{customer}/clv",
            params={"explain": "true"},
            headers=bearer(make_key("read")),
        )
        profile = client.get(f"/v1/customers/{customer}", headers=bearer(make_key("read")))
    assert response.status_code == 200, response.text
    return response.json(), profile.json()["latest_score"]


def _by_hand(db: Engine, customer: str, as_of: datetime) -> tuple[float, float | None]:
    """Orders less refunds up to as_of, and the mean gap between distinct purchase days."""
    with make_session_factory(db)() as session:
        rows = session.execute(
            select(Event.type, Event.amount, Event.occurred_at).where(
                Event.customer_id == customer, Event.occurred_at <= as_of
            )
        ).all()
    revenue = sum(
        float(r.amount or 0) * (1 if r.type == "purchase" else -1)
        for r in rows
        if r.type in ("purchase", "refund")
    )
    days = sorted({r.occurred_at.date() for r in rows if r.type == "purchase"})
    gap = (days[-1] - days[0]).days / (len(days) - 1) if len(days) > 1 else None
    return revenue, gap


def test_a_score_serves_historic_predicted_and_total_value_in_margin_and_discounted_terms(
    explained_shop: ScoredShop, make_key: KeyFactory, db: Engine
) -> None:
    customer = top_customer(db)
    plain, _ = _served(explained_shop, make_key, customer)
    served, latest = _served(
        explained_shop, make_key, customer, margin=MARGIN, annual_discount_rate=RATE
    )
    revenue, gap = _by_hand(db, customer, datetime.fromisoformat(plain["as_of"]))
    factor = MARGIN * ValueTerms(annual_discount_rate=RATE).discount(plain["horizon_days"])

    assert plain["historic_clv"] == pytest.approx(revenue, abs=1e-3)
    assert plain["predicted_clv"] == plain["clv"]
    assert plain["total_clv"] == pytest.approx(plain["historic_clv"] + plain["clv"], abs=1e-3)
    assert gap is not None
    assert plain["average_days_between_orders"] == pytest.approx(gap, abs=1e-3)
    for name in ("clv", "p10", "p50", "p90", "btyd_clv", "predicted_clv"):
        assert served[name] == pytest.approx(plain[name] * factor, abs=2e-4), name
    assert served["expected_order_value"] == pytest.approx(
        plain["expected_order_value"] * MARGIN, abs=2e-4
    )
    assert served["historic_clv"] == pytest.approx(revenue * MARGIN, abs=1e-3)
    assert served["total_clv"] == pytest.approx(served["historic_clv"] + served["clv"], abs=1e-3)
    # what does not measure money is unchanged, the tier included (deciles of stored values)
    for name in ("purchase_probability", "expected_orders", "value_tier", "churn_risk"):
        assert served[name] == plain[name], name
    # the attributions still add up to the value served
    explanation = served["explanation"]
    total = explanation["base_value"] + sum(f["contribution"] for f in explanation["features"])
    assert abs(total - served["clv"]) <= ADDITIVITY_TOLERANCE * max(served["clv"], 1.0)
    assert latest["clv"] == pytest.approx(served["clv"], abs=2e-4)  # the profile's latest score
