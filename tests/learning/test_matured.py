"""Matured predictions: stored scores whose horizon has passed, against what the customers then
spent, per model version; the figures match a computation made here from the shop's files."""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from service.background import job_runner
from service.config import Settings
from service.db.session import make_session_factory
from service.ml.metrics import evaluate
from service.scoring import repository
from service.simulator.memory import end_of_observation
from tests.conftest import SHOP
from tests.prometheus import sample

AS_OF = end_of_observation(SHOP) - timedelta(days=30)
HORIZON = 90


def _orders_between(folder: Path, start: datetime, end: datetime) -> dict[str, float]:
    """Purchases per customer in (start, end], read straight from the shop's files."""
    spent: dict[str, float] = defaultdict(float)
    for name in ("events.jsonl", "future.jsonl"):
        for line in (folder / name).read_text().splitlines():
            event = json.loads(line)
            at = datetime.fromisoformat(event["occurred_at"])
            if event["type"] == "purchase" and start < at <= end:
                spent[event["customer_id"]] += float(Decimal(event["amount"]))
    return spent


def _row(customer: str, version: str, as_of: datetime, clv: float, at: datetime) -> dict[str, Any]:
    return {
        "customer_id": customer,
        "model_version": version,
        "horizon_days": HORIZON,
        "as_of": as_of,
        "computed_at": at,
        "trigger": "model",
        "clv": clv,
        "p10": clv / 4,
        "p50": clv / 2,
        "p90": clv * 2,
        "purchase_probability": min(clv / 200, 1.0),
        "probability_alive": 0.5,
        "expected_orders": clv / 60,
        "expected_order_value": 60.0,
        "btyd_clv": clv * 0.8 + 5,
        "cold_start": False,
        "historic_revenue": 100.0,
        "average_days_between_orders": None,
        "segment": None,
        "explanation": None,
        "risk_flags": [],
    }


@pytest.fixture
def stored_predictions(settings: Settings, db: Engine, shop_in_database: Path) -> dict[str, float]:
    """Version A scored every customer as of AS_OF (matured by now), then rescored some of them
    later with other numbers (not counted: the first score by a version is); version B scored
    them as of now (not matured). Returns version A's first score of each customer."""
    spent = _orders_between(shop_in_database, AS_OF - timedelta(days=365), AS_OF)
    rng = np.random.default_rng(3)
    customers = sorted(
        {
            json.loads(line)["customer_id"]
            for line in (shop_in_database / "events.jsonl").read_text().splitlines()
        }
    )
    first = datetime(2026, 1, 1, tzinfo=UTC)
    rows = [
        _row(c, "clv-a", AS_OF, spent.get(c, 0.0) * 0.4 + float(rng.gamma(1.0, 20.0)), first)
        for c in customers
    ]
    later = [
        _row(c, "clv-a", AS_OF + timedelta(days=10), 9999.0, first + timedelta(hours=1))
        for c in customers[:50]
    ]
    now = datetime.now(UTC)
    recent = [_row(c, "clv-b", now, 50.0, now) for c in customers[:100]]
    with make_session_factory(db)() as session, session.begin():
        for batch in (rows, later, recent):
            repository.save_scores(session, batch)
    return {row["customer_id"]: row["clv"] for row in rows}


def test_matured_accuracy_matches_a_computation_from_the_files(
    stored_predictions: dict[str, float],
    settings: Settings,
    db: Engine,
    shop_in_database: Path,
    client: TestClient,
    admin_headers: dict[str, str],
) -> None:
    assert client.get("/v1/monitoring/accuracy", headers=admin_headers).json() == {"versions": []}
    job = client.post("/v1/monitoring/accuracy", headers=admin_headers)
    assert job.status_code == 202
    assert job_runner(make_session_factory(db), settings).run_once()
    answer = client.get("/v1/monitoring/accuracy", headers=admin_headers)
    assert answer.status_code == 200
    by_version = {v["version"]: v for v in answer.json()["versions"]}
    assert set(by_version) == {"clv-a", "clv-b"}
    assert by_version["clv-b"]["matured"] == 0
    assert by_version["clv-b"]["metrics"] is None
    matured = by_version["clv-a"]
    assert matured["matured"] == len(stored_predictions)
    assert matured["horizon_days"] == [HORIZON]
    assert matured["as_of_from"] == matured["as_of_to"]
    assert datetime.fromisoformat(matured["as_of_from"]) == AS_OF

    spent = _orders_between(shop_in_database, AS_OF, AS_OF + timedelta(days=HORIZON))
    customers = sorted(stored_predictions)
    actual = np.array([spent.get(c, 0.0) for c in customers])
    first = np.array([stored_predictions[c] for c in customers])
    assert actual.sum() > 0
    expected = evaluate(actual, first)
    for key in ("normalized_gini", "decile_mape", "mae", "aggregate_revenue_error", "customers"):
        assert matured["metrics"][key] == pytest.approx(expected[key], rel=1e-9), key
    assert matured["metrics"]["actual_revenue"] == pytest.approx(actual.sum())
    assert matured["btyd"]["predicted_revenue"] == pytest.approx((first * 0.8 + 5).sum())
    # what the matured-accuracy alerts read (deploy/prometheus/alerts.yml); clv-b has too few
    exposed = client.get("/metrics").text
    gini = sample(exposed, "clv_matured_normalized_gini", version="clv-a")
    assert gini == pytest.approx(expected["normalized_gini"], rel=1e-9)
    btyd = evaluate(actual, first * 0.8 + 5)["normalized_gini"]
    assert sample(exposed, "clv_matured_btyd_normalized_gini", version="clv-a") == pytest.approx(
        btyd, rel=1e-9
    )
    assert 'version="clv-b"' not in exposed
