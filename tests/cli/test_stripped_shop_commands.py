"""A shop that sends only purchases (customer, time, amount), end to end: imported from a CSV,
trained and scored by the CLI, explained by the API without the groups it cannot have; and a
shop that sent nothing a model can learn from, refused with what is missing by both."""

from __future__ import annotations

import csv
import re
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from typer.testing import CliRunner

from service.background import job_runner
from service.cli import app
from service.config import Settings
from service.db.session import make_session_factory
from service.main import create_app
from service.ml.activity import MONEY_UNITS
from service.ml.explain import ADDITIVITY_TOLERANCE
from service.simulator.config import ShopConfig
from service.simulator.memory import end_of_observation, shop_log
from tests.conftest import KeyFactory, bearer

runner = CliRunner()
SHOP = ShopConfig(customers=300, days=300, horizon_days=60, seed=7, chunk_customers=300)
AS_OF = end_of_observation(SHOP)
LEFT_OUT = {"category mix", "product text", "profile"}


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, model_settings: Settings) -> Settings:
    monkeypatch.setenv("CLV_DATABASE_URL", model_settings.database_url)
    monkeypatch.setenv("CLV_MODEL_DIR", str(model_settings.model_dir))
    return model_settings


def write_csv(path: Path, rows: pd.DataFrame) -> Path:
    """customer_id, occurred_at, amount: all a shop's order export need hold."""
    with path.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["customer_id", "occurred_at", "amount"])
        for row in rows.itertuples():
            moment = datetime.fromtimestamp(int(row.seconds), UTC).isoformat()
            writer.writerow([row.customer_id, moment, f"{row.amount_units / MONEY_UNITS:.2f}"])
    return path


def shop_purchases() -> pd.DataFrame:
    events = shop_log(SHOP)[0].events
    observed = events["seconds"] <= int(AS_OF.timestamp())
    return events[observed & (events["type"] == "purchase")]


def test_a_purchases_only_shop_trains_scores_and_explains(
    env: Settings, tmp_path: Path, make_key: KeyFactory
) -> None:
    purchases = shop_purchases()
    path = write_csv(tmp_path / "orders.csv", purchases)
    as_of = ["--as-of", AS_OF.isoformat()]

    imported = runner.invoke(app, ["import-csv", str(path), "--amount-col", "amount"])
    trained = runner.invoke(app, ["train", "--horizon-days", "60", "--epochs", "2", *as_of])
    out = tmp_path / "scores.csv"
    scored = runner.invoke(app, ["score", "--horizon-days", "60", "--out", str(out), *as_of])

    assert imported.exit_code == 0, imported.output
    assert trained.exit_code == 0, trained.output
    assert "registered" in trained.stdout
    assert scored.exit_code == 0, scored.output
    scores = pd.read_csv(out)
    assert len(scores) == purchases["customer_id"].nunique()
    assert scores["clv"].notna().all()
    assert (scores["clv"] >= 0).all()
    customer = str(purchases["customer_id"].value_counts().index[0])
    with TestClient(create_app(env)) as client:
        answer = client.get(
            f"/v1/customers/{customer}/clv",
            params={"horizon_days": 60, "as_of": AS_OF.isoformat(), "explain": True},
            headers=bearer(make_key("read")),
        )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    explanation = body["explanation"]
    assert not {g["group"] for g in explanation["groups"]} & LEFT_OUT
    total = explanation["base_value"] + sum(g["contribution"] for g in explanation["groups"])
    assert abs(total - body["clv"]) <= ADDITIVITY_TOLERANCE * max(body["clv"], 1.0) + 1e-3


def test_a_shop_with_only_refunds_is_refused_with_what_is_missing(
    env: Settings, tmp_path: Path, db: Engine, make_key: KeyFactory
) -> None:
    orders = shop_purchases()
    refunds = orders[orders["amount_units"] > 0].assign(amount_units=lambda r: -r["amount_units"])
    path = write_csv(tmp_path / "refunds.csv", refunds)
    flags = ["--amount-col", "amount", "--negative-as-refund"]

    imported = runner.invoke(app, ["import-csv", str(path), *flags])
    trained = runner.invoke(app, ["train", "--horizon-days", "60", "--as-of", AS_OF.isoformat()])
    with TestClient(create_app(env)) as client:
        admin = bearer(make_key("admin"))
        body = {"horizon_days": 60, "as_of": AS_OF.isoformat(), "epochs": 1}
        queued = client.post("/v1/models", json=body, headers=admin).json()
        assert job_runner(make_session_factory(db), env).run_once()
        job = client.get(f"/v1/jobs/{queued['id']}", headers=admin).json()

    assert imported.exit_code == 0, imported.output
    assert trained.exit_code == 1
    assert "Traceback" not in trained.output
    [error] = [line for line in trained.output.splitlines() if line.startswith("error:")]
    assert re.search(r"cannot train for 60 days: .*0 customer\S* .*an order", error)
    assert job["status"] == "failed"
    assert re.search(r"cannot train for 60 days: .*0 customer\S* .*an order", job["error"])
