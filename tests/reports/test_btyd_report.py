"""The BTYD diagnostics (issue 18, item 7) end to end: the job, the stored report, its three
charts over HTTP and from ``clv report btyd``, with the holdout's actual purchases checked
against a computation from the stored events."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from typer.testing import CliRunner

from service.background import job_runner
from service.cli import app
from service.config import Settings
from service.db.session import make_session_factory
from service.events.models import Event
from service.main import create_app
from tests.conftest import KeyFactory, bearer

CHARTS = ("frequency_recency", "probability_alive", "calibration")


def _holdout_by_hand(db: Engine, as_of: datetime, holdout_days: int) -> dict[str, float]:
    """Mean purchase days in (cut-off day, as_of day] of the customers who bought by the
    cut-off's day, by their repeat purchase days then (7 and more together)."""
    with make_session_factory(db)() as session:
        rows = session.execute(
            select(Event.customer_id, Event.occurred_at).where(
                Event.type == "purchase", Event.occurred_at <= as_of
            )
        ).all()
    days = pd.DataFrame(rows, columns=["customer", "at"])
    days["day"] = days["at"].map(lambda moment: moment.date())
    days = days.drop_duplicates(["customer", "day"])
    cut_off = (as_of - timedelta(days=holdout_days)).date()
    before = days[days["day"] <= cut_off].groupby("customer").size() - 1
    after = days[days["day"] > cut_off].groupby("customer").size()
    made = after.reindex(before.index, fill_value=0)
    bins = np.minimum(before, 7).map(lambda b: f"{b}+" if b == 7 else str(b))
    return made.groupby(bins).mean().to_dict()


def test_the_btyd_job_stores_diagnostics_whose_charts_are_served(
    settings: Settings, db: Engine, shop_in_database: Path, make_key: KeyFactory
) -> None:
    admin, reader = bearer(make_key("admin")), bearer(make_key("read"))
    with TestClient(create_app(settings)) as client:
        before = client.get("/v1/reports/btyd", headers=reader)
        denied = client.post("/v1/reports/btyd", json={}, headers=reader)
        invalid = client.post("/v1/reports/btyd", json={"holdout_days": 3}, headers=admin)
        future = client.post(
            "/v1/reports/btyd", json={"as_of": "2999-01-01T00:00:00Z"}, headers=admin
        )
        queued = client.post("/v1/reports/btyd", json={"holdout_days": 90}, headers=admin)
        assert job_runner(make_session_factory(db), settings).run_once()
        job = client.get(f"/v1/jobs/{queued.json()['id']}", headers=admin).json()
        report = client.get("/v1/reports/btyd", headers=reader).json()
        charts = {c: client.get(f"/v1/reports/btyd.png?chart={c}", headers=reader) for c in CHARTS}
        unknown = client.get("/v1/reports/btyd.png?chart=pie", headers=reader)

    assert before.status_code == 404
    assert "POST /v1/reports/btyd" in before.json()["message"]
    assert denied.status_code == 403
    assert invalid.status_code == 422
    assert future.status_code == 422
    assert "future" in future.json()["message"]
    assert unknown.status_code == 422
    assert queued.status_code == 202
    assert job["status"] == "succeeded", job["error"]
    assert job["result"]["report_id"] == report["id"]
    for chart, response in charts.items():
        assert response.status_code == 200, chart
        assert response.headers["content-type"] == "image/png"
        assert response.content.startswith(b"\x89PNG")

    by_hand = _holdout_by_hand(db, datetime.fromisoformat(report["as_of"]), 90)
    rows = {row["frequency"]: row for row in report["calibration"]}
    assert set(rows) == set(by_hand)
    for label, actual in by_hand.items():
        assert abs(rows[label]["actual"] - actual) < 1e-3, label
    assert sum(row["customers"] for row in rows.values()) == report["calibration_buyers"]
    # the fit follows the holdout: its total expected purchases within a third of the actual
    predicted = sum(row["predicted"] * row["customers"] for row in rows.values())
    actual = sum(row["actual"] * row["customers"] for row in rows.values())
    assert abs(predicted / actual - 1) < 1 / 3
    matrices = report["matrices"]
    alive = np.array(matrices["probability_alive"], dtype=float)
    expected = np.array(matrices["expected_purchases"], dtype=float)
    assert alive[0, 0] == 1.0  # BG/NBD: a one-purchase customer is alive
    assert np.isnan(alive[0, 1:]).all()  # frequency 0 with recency > 0 cannot occur
    # at the latest recency, more past purchases mean more expected ones
    assert np.all(np.diff(expected[1:, -1]) > 0)


def test_clv_report_btyd_writes_the_report_and_three_charts(
    settings: Settings, shop_in_database: Path, tmp_path: Path
) -> None:
    result = CliRunner().invoke(
        app,
        ["report", "btyd", "--count-model", "paretonbd", "--out", str(tmp_path)],
        env={"CLV_DATABASE_URL": settings.database_url},
    )

    assert result.exit_code == 0, result.output
    body = json.loads((tmp_path / "report.json").read_text())
    assert body["count_model"] == "paretonbd"
    for chart in CHARTS:
        assert (tmp_path / f"{chart}.png").read_bytes().startswith(b"\x89PNG")
    assert "Stored as report" in result.output

    refused = CliRunner().invoke(
        app,
        ["report", "btyd", "--count-model", "weibull", "--out", str(tmp_path)],
        env={"CLV_DATABASE_URL": settings.database_url},
    )
    assert refused.exit_code != 0
    assert "weibull" in refused.output
