"""The fairness report end to end (API, job, stored report, chart) and training without the
protected attributes (API and the training function)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from typer.testing import CliRunner

from service.background import job_runner
from service.cli import app
from service.config import Settings
from service.db.session import make_session_factory
from service.fairness import service as fairness
from service.main import create_app
from service.ml.clv_model import ClvModel
from service.ml.training import train
from service.model_versions.store import load_version
from service.simulator.memory import end_of_observation, shop_log
from service.training import data
from tests.conftest import FAST, SHOP, KeyFactory, bearer

PROTECTED = ("gender", "age_band", "region")
WITH, WITHOUT = "with_protected_attributes", "without_protected_attributes"


def protected_features(features: list[str]) -> list[str]:
    return [f for f in features if f.split("=")[0].split("__")[0] in PROTECTED]


def test_the_fairness_job_audits_both_models_and_the_report_and_chart_are_served(
    model_settings: Settings, db: Engine, shop_in_database: Path, make_key: KeyFactory
) -> None:
    settings = model_settings.model_copy(update={"fairness_bootstrap": 50})
    admin, reader = bearer(make_key("admin")), bearer(make_key("read"))
    with TestClient(create_app(settings)) as client:
        before = client.get("/v1/reports/fairness", headers=reader)
        denied = client.post("/v1/reports/fairness", json={}, headers=reader)
        queued = client.post(
            "/v1/reports/fairness", json={"horizon_days": 90, "epochs": 1}, headers=admin
        )
        assert job_runner(make_session_factory(db), settings).run_once()
        job = client.get(f"/v1/jobs/{queued.json()['id']}", headers=admin).json()
        found = client.get("/v1/reports/fairness", headers=reader)
        chart = client.get("/v1/reports/fairness.png", headers=reader)

    assert before.status_code == 404
    assert "POST /v1/reports/fairness" in before.json()["message"]
    assert denied.status_code == 403
    assert queued.status_code == 202
    assert queued.json()["kind"] == "fairness"
    assert job["status"] == "succeeded", job["error"]
    report = found.json()
    assert job["result"]["report_id"] == report["id"]
    assert chart.status_code == 200
    assert chart.headers["content-type"] == "image/png"
    assert chart.content.startswith(b"\x89PNG")

    with make_session_factory(db)() as session:
        last = data.event_log(session, datetime(2100, 1, 1, tzinfo=UTC)).events["seconds"].max()
    # the default cut-off: the latest whose whole horizon is in the data
    assert datetime.fromisoformat(report["as_of"]) == datetime.fromtimestamp(
        int(last), UTC
    ) - timedelta(days=90)
    assert report["horizon_days"] == 90
    assert report["attributes"] == list(PROTECTED)
    assert report["absent_attributes"] == []
    assert report["bootstrap"]["samples"] == 50
    with_model, without_model = report[WITH], report[WITHOUT]
    assert with_model["excluded_attributes"] == []
    assert protected_features(with_model["profile_features"]) != []
    assert without_model["excluded_attributes"] == sorted(PROTECTED)
    assert protected_features(without_model["profile_features"]) == []
    assert any(f.startswith("acquisition_channel=") for f in without_model["profile_features"])
    for model in (with_model, without_model):
        assert model["accuracy"]["customers"] == report["customers"]
        for attribute in PROTECTED:
            audited = model["attributes"][attribute]
            assert sum(g["count"] for g in audited["groups"]) == report["customers"]
            assert all(len(g["intervals"]["mean_actual"]) == 2 for g in audited["groups"])
            assert set(audited["disparities"]) == {
                "mean_predicted",
                "mean_actual",
                "mae",
                "calibration_ratio",
                "top_decile_share",
            }
            interval = audited["disparities"]["mean_predicted"]["difference_interval"]
            assert len(interval) == 2
    # the same customers and outcomes: only the predictions differ between the two models
    for attribute in PROTECTED:
        actual = [
            [g["mean_actual"] for g in model["attributes"][attribute]["groups"]]
            for model in (with_model, without_model)
        ]
        assert actual[0] == actual[1]


def test_a_training_job_can_leave_the_protected_attributes_out(
    model_settings: Settings, db: Engine, shop_in_database: Path, make_key: KeyFactory
) -> None:
    admin = bearer(make_key("admin"))
    body = {
        "horizon_days": 60,
        "as_of": "2025-02-04T00:00:00Z",
        "epochs": 1,
        "without_protected_attributes": True,
    }
    with TestClient(create_app(model_settings)) as client:
        queued = client.post("/v1/models", json=body, headers=admin)
        assert job_runner(make_session_factory(db), model_settings).run_once()
        job = client.get(f"/v1/jobs/{queued.json()['id']}", headers=admin).json()

    assert job["status"] == "succeeded", job["error"]
    with make_session_factory(db)() as session:
        _, model = load_version(session, model_settings.model_dir, job["result"]["version"], "cpu")
    assert model.report.excluded_attributes == tuple(sorted(PROTECTED))
    assert protected_features(model.feature_names) == []


def test_a_model_trained_without_them_neither_sees_nor_reads_them_when_it_scores(
    shop_model: ClvModel,
) -> None:
    """Changing every customer's protected attributes changes nothing in its scores, while it
    does change those of a model trained with them (``shop_model``: the same shop and config)."""
    log, profiles, sources = shop_log(SHOP)
    as_of = end_of_observation(SHOP)
    model = train(log, profiles, sources, as_of, replace(FAST, excluded_attributes=PROTECTED))
    changed = {
        customer: {
            **attributes,
            "gender": "undisclosed",
            "age_band": "55+",
            "region": "nowhere",
        }
        for customer, attributes in profiles.items()
    }

    def scores(scorer: ClvModel, attributes: dict[str, dict[str, Any]]) -> np.ndarray:
        return scorer.predict(scorer.examples(log, attributes, sources, as_of))["clv"].to_numpy()

    assert protected_features(model.feature_names) == []
    assert model.report.excluded_attributes == tuple(sorted(PROTECTED))
    assert np.array_equal(scores(model, profiles), scores(model, changed))
    assert protected_features(shop_model.feature_names) != []
    assert not np.array_equal(scores(shop_model, profiles), scores(shop_model, changed))


def test_clv_report_fairness_writes_the_report_and_chart_and_stores_it(
    model_settings: Settings,
    db: Engine,
    shop_in_database: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CLV_DATABASE_URL", model_settings.database_url)
    monkeypatch.setenv("CLV_MODEL_DIR", str(model_settings.model_dir))
    monkeypatch.setenv("CLV_FAIRNESS_ATTRIBUTES", "gender, age_band")
    monkeypatch.setenv("CLV_FAIRNESS_BOOTSTRAP", "20")
    out = tmp_path / "fairness"

    made = CliRunner().invoke(
        app, ["report", "fairness", "--horizon-days", "90", "--epochs", "1", "--out", str(out)]
    )
    beyond = CliRunner().invoke(
        app, ["report", "fairness", "--as-of", "2099-01-01", "--out", str(out)]
    )

    assert made.exit_code == 0, made.output
    assert "Disparities between groups" in made.output
    report = json.loads((out / "report.json").read_text())
    assert (out / "fairness.png").read_bytes().startswith(b"\x89PNG")
    assert report["attributes"] == ["gender", "age_band"]
    without = report[WITHOUT]["profile_features"]
    assert not [f for f in without if f.startswith(("gender", "age_band"))]
    assert any(f.startswith("region=") for f in without)  # not protected here
    with make_session_factory(db)() as session:
        assert fairness.latest(session).as_of == datetime.fromisoformat(report["as_of"])
    assert beyond.exit_code == 1
    assert "needs them up to" in beyond.output
