"""Training on rolling cut-offs: point-in-time correct, reproducible, honest about short data;
the saved artifact round-trips and refuses corruption."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from service.ml import artifacts
from service.ml.clv_model import SCORE_COLUMNS, ClvModel
from service.ml.examples import EventLog
from service.ml.training import DataTooShortError, TrainConfig, TrainingReport, plan_windows, train
from service.ml.training.windows import held_out
from service.simulator.memory import end_of_observation, shop_log

FAST = {
    "epochs": 8,
    "hidden": 16,
    "cutoffs": 2,
    "partial_step_days": 30,
    "sequence_length": 8,
    "text_components": 4,
}


@pytest.fixture(scope="module")
def shop() -> tuple:  # type: ignore[type-arg]
    return shop_log()


@pytest.fixture(scope="module")
def model(shop: tuple) -> ClvModel:  # type: ignore[type-arg]
    log, profiles, sources = shop
    return train(log, profiles, sources, end_of_observation(), TrainConfig(horizon_days=90, **FAST))


def scores(model: ClvModel, shop: tuple, horizon: int = 90):  # type: ignore[no-untyped-def,type-arg]
    log, profiles, sources = shop
    asked = replace(model, horizon_days=horizon)
    examples = asked.examples(log, profiles, sources, end_of_observation(), label_days=horizon)
    return examples, asked.predict(examples)


def test_a_trained_model_scores_every_customer_sensibly(model: ClvModel, shop: tuple) -> None:  # type: ignore[type-arg]
    examples, predicted = scores(model, shop)

    assert list(predicted.columns) == list(SCORE_COLUMNS)
    assert len(predicted) == len(examples.customers) > 1000
    assert np.isfinite(predicted.to_numpy()).all()
    assert (predicted["p10"] <= predicted["p50"]).all()
    assert (predicted["p50"] <= predicted["p90"]).all()
    assert predicted["purchase_probability"].between(0, 1).all()
    validation = model.report.validation
    assert validation.held_out["deep"]["customers"] > 0
    assert set(validation.candidates) == {"bgnbd", "paretonbd", "deep", "blend"}
    assert validation.served in validation.candidates
    assert 0.75 <= validation.p10_p90_coverage <= 0.85
    # Customers who spent more in the past are predicted to spend more.
    heavy = examples.portrait["spend_365d"] > examples.portrait["spend_365d"].quantile(0.9)
    assert predicted["clv"][heavy.to_numpy()].mean() > 2 * predicted["clv"].mean()


def test_training_sees_nothing_after_its_as_of_and_is_reproducible(
    shop: tuple, model: ClvModel
) -> None:  # type: ignore[type-arg]
    log, profiles, sources = shop
    as_of = end_of_observation()

    again = train(log.until(as_of), profiles, sources, as_of, TrainConfig(horizon_days=90, **FAST))

    _, first = scores(model, shop)
    _, second = scores(again, shop)
    np.testing.assert_allclose(first.to_numpy(), second.to_numpy(), rtol=1e-5, atol=1e-6)


def test_windows_reach_up_to_the_as_of_and_validation_customers_are_never_trained_on(
    shop: tuple, model: ClvModel
) -> None:  # type: ignore[type-arg]
    log, _, _ = shop
    as_of = end_of_observation()
    config = TrainConfig(horizon_days=180, **{**FAST, "partial_step_days": 45})

    horizon, windows = plan_windows(log.first_moment, as_of, config)

    full = [w for w in windows if w.days == horizon]
    partial = [w for w in windows if w.days < horizon]
    assert [w.cutoff for w in full] == sorted((w.cutoff for w in full), reverse=True)
    assert len(full) == config.cutoffs + 1
    assert horizon == 180
    assert [w.days for w in partial] == [135, 90, 45]
    assert all(w.cutoff + timedelta(days=w.days) == as_of for w in partial)
    customers = log.events["customer_id"].drop_duplicates()
    held = held_out(pd.Index(customers), config)
    assert 0.15 < held.mean() < 0.25
    assert model.report.validation_examples < model.report.training_examples


def test_the_network_predicts_shorter_horizons_than_trained_from_its_horizon_input(
    model: ClvModel, shop: tuple
) -> None:  # type: ignore[type-arg]
    _, at_90 = scores(model, shop, 90)
    _, at_30 = scores(model, shop, 30)

    assert (model.shortest_horizon_days, model.trained_horizon_days) == (30, 90)
    assert 0.2 < at_30["clv"].sum() / at_90["clv"].sum() < 0.6
    assert (at_30["purchase_probability"].mean()) < at_90["purchase_probability"].mean()


def test_a_horizon_shorter_than_any_window_is_carried_down_not_extrapolated(
    model: ClvModel, shop: tuple
) -> None:  # type: ignore[type-arg]
    only_90 = replace(model, shortest_horizon_days=90)  # as if trained without partial windows
    _, at_90 = scores(only_90, shop, 90)
    _, at_30 = scores(only_90, shop, 30)

    assert replace(only_90, horizon_days=30).network_horizon_days == 90
    assert 0.2 < at_30["clv"].sum() / at_90["clv"].sum() < 0.6
    assert (at_30["purchase_probability"] <= at_90["purchase_probability"] + 1e-9).all()
    assert at_30["btyd_clv"].sum() < at_90["btyd_clv"].sum()


def test_a_shop_too_small_to_hold_customers_out_is_refused(shop: tuple) -> None:  # type: ignore[type-arg]
    log, profiles, sources = shop
    few = log.events["customer_id"].drop_duplicates().iloc[:25]
    tiny = EventLog(
        log.events[log.events["customer_id"].isin(few)],
        log.items[log.items["customer_id"].isin(few)],
    )

    with pytest.raises(DataTooShortError, match="held out for validation"):
        train(tiny, profiles, sources, end_of_observation(), TrainConfig(horizon_days=90, **FAST))


def test_short_data_trains_a_shorter_horizon_and_says_so(shop: tuple) -> None:  # type: ignore[type-arg]
    log, profiles, sources = shop
    first = log.first_moment
    as_of = first + timedelta(days=150)

    horizon, windows = plan_windows(first, as_of, TrainConfig(horizon_days=365, **FAST))
    model = train(log, profiles, sources, as_of, TrainConfig(horizon_days=365, **FAST))

    assert horizon == 150 - 60
    assert model.trained_horizon_days == 90
    assert model.horizon_days == 365
    assert (windows[0].cutoff, windows[0].days) == (as_of - timedelta(days=90), 90)
    with pytest.raises(DataTooShortError, match="training needs at least 88"):
        train(
            log, profiles, sources, first + timedelta(days=70), TrainConfig(horizon_days=30, **FAST)
        )


def test_artifacts_round_trip_and_refuse_corruption(
    model: ClvModel, shop: tuple, tmp_path: Path
) -> None:  # type: ignore[type-arg]
    folder = tmp_path / "v1"
    checksum = artifacts.save(model, folder, {"note": "test"})
    loaded = artifacts.load(folder, expected_checksum=checksum)

    _, original = scores(model, shop)
    _, reloaded = scores(loaded, shop)
    np.testing.assert_allclose(original.to_numpy(), reloaded.to_numpy(), rtol=1e-6)
    stored, trained = (json.dumps(m.report.to_json(), sort_keys=True) for m in (loaded, model))
    assert stored == trained

    corrupt = tmp_path / "corrupt"
    shutil.copytree(folder, corrupt)
    weights = corrupt / artifacts.WEIGHTS
    weights.write_bytes(weights.read_bytes()[:-10] + b"\x00" * 10)
    with pytest.raises(artifacts.ArtifactError, match="corrupt"):
        artifacts.load(corrupt)

    truncated = tmp_path / "truncated"
    shutil.copytree(folder, truncated)
    (truncated / artifacts.WEIGHTS).unlink()
    with pytest.raises(artifacts.ArtifactError, match="missing"):
        artifacts.load(truncated)

    mismatched = tmp_path / "mismatched"
    shutil.copytree(folder, mismatched)
    config = json.loads((mismatched / artifacts.CONFIG).read_text())
    config["feature_names"] = [*config["feature_names"][:-1], "a_feature_we_do_not_compute"]
    (mismatched / artifacts.CONFIG).write_text(json.dumps(config))
    (mismatched / artifacts.CHECKSUM).write_text(artifacts.digest(mismatched))
    with pytest.raises(artifacts.ArtifactError, match="different feature schema"):
        artifacts.load(mismatched)
    with pytest.raises(artifacts.ArtifactError, match="corrupt"):
        artifacts.load(folder, expected_checksum="0" * 64)


TUNING = ("gradient_clip_norm", "min_improvement", "evaluation_batch_size", "max_log_calibration")
"""The settings that were constants in the code before they were ``TrainConfig`` fields."""


def test_the_report_writes_the_keys_artifacts_and_the_api_have_always_had(
    model: ClvModel,
) -> None:
    stored = model.report.to_json()

    assert list(stored) == [
        *("as_of", "data_from", "windows", "validation_cutoff", "training_examples"),
        *("validation_examples", "history", "calibration_factor", "config"),
        *("excluded_attributes", "validation", "warm_start"),
    ]
    assert list(stored["validation"]) == [
        *("served", "rule", "window", "customers", "candidates", "reasons"),
        *("p10_p90_coverage", "seasons", "held_out", "omitted_feature_groups"),
    ]
    assert list(stored["windows"][0]) == ["cutoff", "days", "held_out_predicted", "held_out_actual"]
    assert list(stored["history"][0]) == ["epoch", "train_loss", "validation_loss"]
    assert stored["validation_cutoff"] == stored["windows"][0]["cutoff"]
    assert "validation" not in model.report.training_json()


def test_a_report_stored_before_the_tuning_settings_reads_them_as_their_defaults(
    model: ClvModel,
) -> None:
    older = json.loads(json.dumps(model.report.to_json()))
    for name in TUNING:
        del older["config"][name]

    assert TrainingReport.from_json(older).config == model.report.config
    assert TrainingReport.from_json(older).config == TrainConfig(horizon_days=90, **FAST)
