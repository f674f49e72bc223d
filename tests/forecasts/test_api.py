"""Forecasts end to end on both backends: queued as a job, stored, served as JSON and PNG; the
existing customers' part against the stored scores it comes from; validation and missing ids."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from service.background import job_runner
from service.cli import app
from service.db.session import make_session_factory
from service.main import create_app
from tests.conftest import KeyFactory, ScoredShop, bearer


def stored_expected_orders(db: Engine) -> tuple[float, float]:
    """(expected orders, expected revenue over the champion's horizon) of the customers with a
    stored score and an order: what the forecast's existing part must add up to."""
    query = text(
        "SELECT SUM(expected_orders), SUM(expected_orders * expected_order_value) FROM scores "
        "WHERE customer_id IN (SELECT customer_id FROM customer_days WHERE orders > 0)"
    )
    with db.connect() as connection:
        orders, revenue = connection.execute(query).one()
    return float(orders), float(revenue)


def test_a_forecast_job_is_stored_and_served_as_json_and_chart(
    scored_shop: ScoredShop, db: Engine, make_key: KeyFactory
) -> None:
    admin, reader = bearer(make_key("admin")), bearer(make_key("read"))
    horizon = 90  # the champion's (tests.conftest.FAST)
    asked = {"horizon_days": horizon, "granularity": "week", "by": "category"}
    with TestClient(create_app(scored_shop.settings)) as client:
        denied = client.post("/v1/forecasts", json=asked, headers=reader)
        queued = client.post("/v1/forecasts", json=asked, headers=admin)
        assert job_runner(make_session_factory(db), scored_shop.settings).run_once()
        job = client.get(f"/v1/jobs/{queued.json()['id']}", headers=admin).json()
        assert job["status"] == "succeeded", job["error"]
        forecast_id = job["result"]["forecast_id"]
        found = client.get(f"/v1/forecasts/{forecast_id}", headers=reader)
        chart = client.get(f"/v1/forecasts/{forecast_id}.png", headers=reader)
        missing = client.get(f"/v1/forecasts/{forecast_id + 100}", headers=reader)
        missing_chart = client.get(f"/v1/forecasts/{forecast_id + 100}.png", headers=reader)

    assert denied.status_code == 403
    assert queued.status_code == 202
    assert queued.json()["kind"] == "forecast"
    assert found.status_code == 200
    body = found.json()
    assert body["model_version"] == scored_shop.version
    assert body["horizon_days"] == horizon
    assert chart.headers["content-type"] == "image/png"
    assert chart.content.startswith(b"\x89PNG")
    assert missing.status_code == missing_chart.status_code == 404
    assert missing.json()["code"] == "not_found"
    assert "POST /v1/forecasts" in missing.json()["message"]

    # weeks run Monday to Sunday and cover the horizon, day by day
    periods = body["periods"]
    assert sum(p["days"] for p in periods) == horizon
    assert all(p["days"] == 7 for p in periods[1:-1])
    assert not any(p["extrapolated"] for p in periods)
    for p in periods:
        for measure in ("revenue", "orders"):
            band = p[measure]
            assert 0 <= band["p10"] <= band["p90"]
            parts = p["existing_customers"][measure]["expected"]
            parts += p["new_customers"][measure]["expected"]
            assert band["expected"] == pytest.approx(parts, rel=1e-6, abs=1e-3)

    # over the champion's horizon from the scores' as_of, the existing customers' orders and
    # revenue are the stored scores' own: the curves only say when
    orders, revenue = stored_expected_orders(db)
    existing = body["total"]["existing_customers"]
    # (the body's figures are rounded to 4 decimals)
    assert existing["orders"]["expected"] == pytest.approx(orders, abs=1e-4)
    assert existing["revenue"]["expected"] == pytest.approx(revenue, abs=1e-4)
    assert sum(p["existing_customers"]["orders"]["expected"] for p in periods) == pytest.approx(
        orders, abs=1e-3
    )

    # by category: every period's categories add up to its expected revenue
    categories = body["categories"]
    assert len(categories) >= 2
    for i, p in enumerate(periods):
        summed = sum(c["periods"][i]["revenue"] for c in categories)
        assert summed == pytest.approx(p["revenue"]["expected"], rel=1e-6, abs=1e-2)
    assert sum(c["revenue"] for c in categories) == pytest.approx(
        body["total"]["revenue"]["expected"], rel=1e-6
    )
    assert all(c["units"] >= 0 for c in categories)


@pytest.mark.parametrize(
    ("asked", "field"),
    [
        ({"granularity": "fortnight"}, "granularity"),
        ({"horizon_days": 0}, "horizon_days"),
        ({"horizon_days": 731}, "horizon_days"),
        ({"by": "region"}, "by"),
        ({"horizon": 30}, "horizon"),
    ],
)
def test_a_request_it_cannot_answer_is_refused_with_a_json_error(
    client: TestClient, admin_headers: dict[str, str], asked: dict[str, Any], field: str
) -> None:
    refused = client.post("/v1/forecasts", json=asked, headers=admin_headers)

    assert refused.status_code == 422
    assert refused.json()["code"] == "validation_error"
    assert field in refused.text


def test_without_a_champion_a_forecast_is_refused_and_an_unknown_id_is_not_found(
    client: TestClient, admin_headers: dict[str, str]
) -> None:
    refused = client.post("/v1/forecasts", json={}, headers=admin_headers)
    unknown = client.get("/v1/forecasts/12345", headers=admin_headers)
    not_an_id = client.get("/v1/forecasts/latest", headers=admin_headers)

    assert refused.status_code == 404
    assert "champion" in refused.json()["message"]
    assert unknown.status_code == 404
    assert unknown.json()["code"] == "not_found"
    assert not_an_id.status_code == 422


def test_clv_forecast_stores_a_monthly_forecast_past_the_champions_horizon(
    scored_shop: ScoredShop, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLV_DATABASE_URL", scored_shop.settings.database_url)
    monkeypatch.setenv("CLV_MODEL_DIR", str(scored_shop.settings.model_dir))
    out = tmp_path / "forecast"

    made = CliRunner().invoke(
        app,
        ["forecast", "--horizon-days", "200", "--granularity", "month", "--out", str(out)],
    )
    wrong = CliRunner().invoke(app, ["forecast", "--granularity", "year", "--out", str(out)])

    assert made.exit_code == 0, made.output
    assert "Stored as forecast" in made.output
    body = json.loads((out / "forecast.json").read_text())
    assert (out / "forecast.png").read_bytes().startswith(b"\x89PNG")
    assert body["granularity"] == "month"
    assert sum(p["days"] for p in body["periods"]) == 200
    assert body["periods"][-1]["extrapolated"]  # past the champion's 90 days
    assert not body["periods"][0]["extrapolated"]
    assert wrong.exit_code != 0
