"""A backtest end to end: a model trained up to the cut-off, judged on the spend after it against
the BTYD baseline, written as report.json and charts. The backend only stores the events it
reads, so SQLite alone runs it (training dominates its time)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import Engine

from service.config import Settings
from service.db.session import make_session_factory
from service.simulator.memory import end_of_observation
from service.training.backtest import backtest
from tests.conftest import SHOP


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_backtest_judges_the_model_on_the_spend_after_its_cut_off(
    model_settings: Settings, db: Engine, shop_in_database: Path, tmp_path: Path
) -> None:
    out = tmp_path / "backtest"

    report = backtest(
        make_session_factory(db),
        model_settings,
        as_of=end_of_observation(SHOP),
        horizon_days=90,
        out=out,
        epochs=1,
    )

    assert json.loads((out / "report.json").read_text()) == json.loads(json.dumps(report))
    assert {p.name for p in out.glob("*.png")} == {"gain.png", "deciles.png", "calibration.png"}
    assert report["horizon_days"] == 90
    assert "validation" not in report["training"]  # the registry keeps it; a backtest does not
    buyers = report["populations"]["customers_with_an_order"]
    everyone = report["populations"]["all_customers"]
    assert {"served", "served_int8", "btyd"} <= set(buyers)
    assert 0 < buyers["served"]["customers"] < everyone["served"]["customers"]
    assert buyers["served"]["actual_revenue"] > 0  # judged on real spend after the cut-off
    assert -1.0 <= buyers["served"]["normalized_gini"] <= 1.0
    assert 0.0 <= buyers["served"]["p10_p90_coverage"] <= 1.0
