"""Backtests refuse a holdout too thin to judge on: a shop whose orders stopped long before the
cut-off would otherwise be judged on no spend at all (Gini 0, aggregate error 3e16). The refusal
names the latest cut-off the data allow, and nothing is computed or stored."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from typer.testing import CliRunner

from service.cli import app
from service.config import Settings
from service.db.session import make_session_factory
from service.events import repository as events
from service.main import create_app
from service.reports import repository as reports
from tests.conftest import KeyFactory, bearer

LATE_VISIT = "2026-04-30T12:00:00Z"


@pytest.fixture
def quiet_shop(
    model_settings: Settings, db: Engine, shop_in_database: Path, make_key: KeyFactory
) -> Settings:
    """The test shop, whose orders end in 2025, and one visit at the end of April 2026: the
    events reach far past its last order."""
    visit = {"event_id": "late-visit", "customer_id": "c-late", "type": "view"}
    with TestClient(create_app(model_settings)) as client:
        sent = client.post(
            "/v1/events",
            json={"events": [{**visit, "occurred_at": LATE_VISIT}]},
            headers=bearer(make_key("ingest")),
        )
    assert sent.json()["accepted"] == 1
    return model_settings


def test_a_backtest_after_the_last_orders_is_refused_with_the_latest_fair_cut_off(
    quiet_shop: Settings,
    db: Engine,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    make_key: KeyFactory,
) -> None:
    with make_session_factory(db)() as session:
        last_order = events.last_purchase_at(session)
    assert last_order is not None
    fair_cut_off = (last_order - timedelta(days=90)).date()
    monkeypatch.setenv("CLV_DATABASE_URL", quiet_shop.database_url)
    monkeypatch.setenv("CLV_MODEL_DIR", str(quiet_shop.model_dir))
    out = tmp_path / "bt"

    def evaluate(*more: str) -> list[str]:
        ran = CliRunner().invoke(
            app,
            ["evaluate", "--horizon-days", "90", "--out", str(out), *more],
            env={"COLUMNS": "1000"},
        )
        assert ran.exit_code == 1, ran.output
        return [line for line in ran.output.splitlines() if line.startswith("error:")]

    thin = evaluate("--as-of", "2026-01-31")
    assert len(thin) == 1
    assert "the 90-day holdout 2026-01-31..2026-05-01 holds 0 orders" in thin[0]
    assert f"the orders end on {last_order.date()}" in thin[0]
    assert f"a fair run is possible as of {fair_cut_off}" in thin[0]
    beyond = evaluate()  # as of now: the horizon runs past the events
    assert "needs them up to" in beyond[0]
    assert "the latest cut-off they allow is 2026-01-30" in beyond[0]
    assert not out.exists()

    admin = bearer(make_key("admin"))
    with TestClient(create_app(quiet_shop)) as client:  # the fairness report is a backtest
        refused = client.post("/v1/reports/fairness", json={"horizon_days": 90}, headers=admin)
    assert refused.status_code == 409, refused.text
    assert refused.json()["code"] == "holdout_too_thin"
    assert "holdout 2026-01-30..2026-04-30 holds 0 orders" in refused.json()["message"]
    assert f"possible as of {fair_cut_off}" in refused.json()["message"]
    with make_session_factory(db)() as session:
        assert reports.latest(session, "fairness") is None
