"""The learning loop on a shop whose behaviour shifts: a champion trained before the shift
loses accuracy after it; the loop's challenger, fine-tuned on the newest data, recovers it and is
promoted; a deliberately worse challenger is not; every decision is stored with both models'
metrics, and the champion can be rolled back to any earlier version.

The shift: from day 380 on, customers acquired through the organic channel (about a third of
them) buy a quarter as often as before. The champion is trained at day 310; its accuracy is
measured on the 60 days before the shift and on the last 60 days (the loop's holdout).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from service.background import job_runner
from service.cli import app
from service.config import Settings
from service.db.session import make_session_factory
from service.jobs import repository as job_rows
from service.jobs import service as jobs
from service.jobs.kinds import JobKind
from service.learning.evaluation import Holdout, holdout_metrics
from service.learning.models import LearningDecision
from service.learning.schemas import LearnParams, Trigger
from service.learning.service import learn
from service.main import create_app
from service.ml.clv_model import ClvModel
from service.ml.training import TrainConfig, train
from service.model_versions import repository as versions
from service.model_versions import service as registry
from service.model_versions.store import load_version
from service.simulator.config import Shift, ShopConfig
from service.simulator.files import write_shop
from service.simulator.memory import shop_log
from service.training.holdout import ThinHoldoutError
from tests.conftest import import_shop

SHIFT_DAY = 380
SHIFTED = ShopConfig(
    customers=3_000,
    days=540,
    horizon_days=90,
    seed=2,
    shift=Shift(day=SHIFT_DAY, channel="organic", factor=0.25),
    seasons=False,
)
PROTECTED = ("gender", "age_band", "region")
CONFIG = TrainConfig(
    horizon_days=90,
    epochs=8,
    hidden=16,
    cutoffs=2,
    sequence_length=16,
    partial_step_days=30,
    excluded_attributes=PROTECTED,  # as the service trains by default
)
START = datetime.combine(SHIFTED.start, time(), UTC)
END = START + timedelta(days=SHIFTED.days) - timedelta(seconds=1)
CHAMPION_AT = START + timedelta(days=310)
KEYS = ("normalized_gini", "decile_mape", "aggregate_revenue_error")


@dataclass(frozen=True)
class Models:
    champion: ClvModel
    worse: ClvModel  # one epoch, two hidden units, eight months older data
    before_shift: dict[str, float]  # the champion on the 60 days before the shift


@pytest.fixture(scope="module")
def shifted_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("shifted")
    write_shop(SHIFTED, folder)
    return folder


@pytest.fixture(scope="module")
def models() -> Models:
    log, profiles, sources = shop_log(SHIFTED)
    champion = train(log, profiles, sources, CHAMPION_AT, CONFIG)
    worse_at = START + timedelta(days=250)
    worse = train(
        log,
        profiles,
        sources,
        worse_at,
        TrainConfig(horizon_days=90, epochs=1, hidden=2, cutoffs=1, sequence_length=4),
    )
    before = Holdout.ending(START + timedelta(days=SHIFT_DAY), 60)
    metrics = holdout_metrics({"champion": champion}, log, profiles, sources, before)
    return Models(champion, worse, metrics["champion"])


@pytest.fixture
def shop_settings(settings: Settings, tmp_path: Path) -> Settings:
    return settings.model_copy(update={"model_dir": tmp_path / "models", "learning_epochs": 10})


@pytest.fixture
def client(shop_settings: Settings) -> Iterator[TestClient]:
    """The API on the shop's settings (its model folder)."""
    with TestClient(create_app(shop_settings)) as client:
        yield client


@pytest.fixture
def shop(
    shop_settings: Settings, db: Engine, shifted_folder: Path, models: Models
) -> tuple[Settings, sessionmaker[Session], str]:
    """The shifted shop stored, the champion registered (its rescoring job cancelled: scores
    are not what these tests look at)."""
    settings = shop_settings
    factory = make_session_factory(db)
    import_shop(settings, factory, shifted_folder)
    with factory() as session, session.begin():
        validation = models.champion.report.validation.to_json()
        version = registry.register(
            session, settings.model_dir, models.champion, validation, "t"
        ).version
    _cancel_queued(factory)
    return settings, factory, version


def _cancel_queued(factory: sessionmaker[Session]) -> None:
    """Cancel the rescoring a registration queues: scores are not what these tests look at."""
    with factory() as session, session.begin():
        while (active := job_rows.active_job(session, "rescore")) is not None:
            jobs.cancel(session, active.id)


def _run_learning(
    client: TestClient,
    headers: dict[str, str],
    settings: Settings,
    factory: sessionmaker[Session],
    **body: str,
) -> dict[str, Any]:
    job = client.post("/v1/learning/runs", json={"as_of": END.isoformat(), **body}, headers=headers)
    assert job.status_code == 202, job.text
    assert job_runner(factory, settings).run_once()
    finished = client.get(f"/v1/jobs/{job.json()['id']}", headers=headers).json()
    assert finished["status"] == "succeeded", finished
    decisions = client.get("/v1/learning/decisions", headers=headers).json()
    assert decisions[0]["id"] == finished["result"]["id"]
    return dict(decisions[0])


def test_the_challenger_recovers_after_the_shift_and_is_promoted_a_worse_one_is_not(
    shop: tuple[Settings, sessionmaker[Session], str],
    models: Models,
    client: TestClient,
    admin_headers: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings, factory, original = shop
    decision = _run_learning(client, admin_headers, settings, factory)
    assert decision["trigger"] == "demand"
    assert decision["mode"] == "warm"
    assert decision["holdout_from"].startswith((END - timedelta(days=60)).date().isoformat())
    champion, challenger = decision["champion_metrics"], decision["challenger_metrics"]
    assert isinstance(champion, dict)
    assert isinstance(challenger, dict)
    before = models.before_shift
    # the shift cost the champion its calibration: its level is far too high afterwards
    assert champion["aggregate_revenue_error"] > before["aggregate_revenue_error"] + 0.15
    assert champion["decile_mape"] > before["decile_mape"] + 0.2
    # the challenger recovers it, ranks better, and is promoted
    assert decision["outcome"] == "promoted"
    assert decision["promoted"] is True
    assert challenger["normalized_gini"] >= champion["normalized_gini"] + 0.005
    assert abs(challenger["aggregate_revenue_error"]) < abs(champion["aggregate_revenue_error"])
    assert challenger["decile_mape"] < champion["decile_mape"] - 0.2
    assert decision["baseline_metrics"]["customers"] == champion["customers"]
    promoted = decision["challenger_version"]
    with factory() as session:
        assert versions.aliases(session)["champion"] == promoted
        assert job_rows.active_job(session, "rescore") is not None  # everyone rescored
        model = client.get(f"/v1/models/{promoted}", headers=admin_headers).json()
    assert model["data_to"].startswith((END - timedelta(days=60)).date().isoformat())
    with factory() as session:
        _, challenger_model = load_version(session, settings.model_dir, promoted, "cpu")
    fair_by_default = tuple(sorted(PROTECTED))
    assert challenger_model.report.excluded_attributes == fair_by_default

    # a deliberately worse challenger, judged on the same holdout, is kept as challenger
    with factory() as session, session.begin():
        worse = registry.register(session, settings.model_dir, models.worse, {}, "t").version
    _cancel_queued(factory)
    refused = _run_learning(client, admin_headers, settings, factory, challenger=worse)
    assert refused["outcome"] == "kept"
    assert refused["mode"] == "given"
    assert refused["champion_version"] == promoted
    assert any("does not beat" in r for r in refused["reasons"])
    with factory() as session:
        aliases = versions.aliases(session)
    assert aliases == {"champion": promoted, "challenger": worse}

    # rollback to any earlier champion
    back = client.post(
        "/v1/models/rollback",
        json={"alias": "champion", "version": original},
        headers=admin_headers,
    )
    assert back.status_code == 200, back.text
    assert back.json()["previous_version"] == promoted
    never = client.post(
        "/v1/models/rollback", json={"alias": "champion", "version": worse}, headers=admin_headers
    )
    assert never.status_code == 409
    assert "was never champion" in never.json()["message"]

    # the same from the command line
    monkeypatch.setenv("CLV_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("CLV_MODEL_DIR", str(settings.model_dir))
    rolled = CliRunner().invoke(app, ["models", "rollback", "--to", str(promoted)])
    assert rolled.exit_code == 0, rolled.output
    assert f"champion: {original} -> {promoted}" in rolled.output
    judged = CliRunner().invoke(
        app, ["learning", "run", "--as-of", END.isoformat(), "--challenger", worse]
    )
    assert judged.exit_code == 0, judged.output
    assert f"kept: challenger {worse} against champion {promoted}" in judged.output
    listed = CliRunner().invoke(app, ["learning", "decisions"], env={"COLUMNS": "250"})
    assert listed.exit_code == 0, listed.output
    rows = [line.split("│") for line in listed.output.splitlines() if "│ " in line]
    assert [row[4].strip() for row in rows] == ["kept", "kept", "promoted"]


def test_a_run_that_cannot_judge_fairly_is_refused_or_skipped_with_the_reason(
    shop: tuple[Settings, sessionmaker[Session], str],
    client: TestClient,
    admin_headers: dict[str, str],
) -> None:
    settings, factory, original = shop
    early = CHAMPION_AT + timedelta(days=30)  # its holdout starts before the champion's data end
    refused = client.post(
        "/v1/learning/runs", json={"as_of": early.isoformat()}, headers=admin_headers
    )
    assert refused.status_code == 409
    assert "a fair 60-day holdout needs" in refused.json()["message"]
    # a trigger that fires anyway (here: the job run directly) stores why it did nothing
    decision = learn(factory, settings, trigger=Trigger.schedule, actor="t", as_of=early)
    assert decision.outcome == "skipped"
    assert decision.challenger_version is None
    assert decision.champion_version == original
    assert "a fair 60-day holdout needs" in decision.reasons[0]
    with factory() as session:
        assert versions.aliases(session) == {"champion": original}


def test_a_champion_changed_during_the_run_is_not_replaced_by_its_challenger(
    shop: tuple[Settings, sessionmaker[Session], str], models: Models
) -> None:
    """The run judges against the champion it started with; if a person promotes another one
    meanwhile, the challenger was never compared with that one and must not replace it."""
    settings, factory, original = shop
    with factory() as session, session.begin():
        worse = registry.register(session, settings.model_dir, models.worse, {}, "t").version
        registry.promote(session, settings.model_dir, worse, "champion", "t")
        again = registry.register(session, settings.model_dir, models.champion, {}, "t").version

    def promote_meanwhile(stage: str, done: float) -> None:
        if stage.startswith("judging"):
            with factory() as session, session.begin():
                registry.promote(session, settings.model_dir, again, "champion", "person")

    lenient = settings.model_copy(update={"learning_calibration_tolerance": 10.0})
    decision = learn(  # lenient: the only check that matters here is the champion's
        factory,
        lenient,
        trigger=Trigger.demand,
        actor="t",
        as_of=END,
        challenger=original,
        progress=promote_meanwhile,
    )
    assert decision.champion_version == worse
    assert decision.outcome == "kept"
    assert decision.reasons[0].startswith(
        "normalised Gini"
    )  # it did beat the one it was judged against
    assert decision.reasons[-1] == (
        f"not promoted: the champion changed while the run judged (now {again})"
    )
    with factory() as session:
        assert versions.aliases(session)["champion"] == again


def test_learning_requests_are_validated(
    shop: tuple[Settings, sessionmaker[Session], str],
    client: TestClient,
    admin_headers: dict[str, str],
) -> None:
    future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    original = shop[2]
    cases = [
        ({"as_of": future}, 422, "in the future"),
        ({"as_of": "0001-01-01T00:00:00Z"}, 422, "before any data"),
        ({"challenger": original}, 409, "is the champion"),
        ({"mode": "lukewarm"}, 422, "mode"),
        ({"challenger": "clv-nope"}, 404, "clv-nope"),
        ({"surprise": 1}, 422, "surprise"),
    ]
    for body, code, words in cases:
        answer = client.post("/v1/learning/runs", json=body, headers=admin_headers)
        assert answer.status_code == code, (body, answer.text)
        assert words in answer.json()["message"]
    at_the_end = {"as_of": END.isoformat()}
    first = client.post("/v1/learning/runs", json=at_the_end, headers=admin_headers)
    assert first.status_code == 202
    again = client.post("/v1/learning/runs", json=at_the_end, headers=admin_headers)
    assert again.status_code == 409
    assert f"learning job {first.json()['id']} is already queued" in again.json()["message"]
    assert client.get("/v1/learning/decisions/99", headers=admin_headers).status_code == 404


def _decision_count(factory: sessionmaker[Session]) -> int:
    with factory() as session:
        return len(session.scalars(select(LearningDecision)).all())


def test_a_run_on_a_holdout_without_orders_is_refused_with_the_date_and_nothing_stored(
    shop: tuple[Settings, sessionmaker[Session], str],
    client: TestClient,
    admin_headers: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The shop's events end at END, long before now: a run as of now would judge both models
    on 60 days without an order (Gini 0 against 0, aggregate error 3e16). It is refused, with
    the latest as_of the data allow, and no decision is stored."""
    settings, factory, original = shop
    refused = client.post("/v1/learning/runs", json={}, headers=admin_headers)
    assert refused.status_code == 409, refused.text
    body = refused.json()
    assert body["code"] == "holdout_too_thin"
    assert "holds 0 orders" in body["message"]
    assert f"a fair run is possible as of {END.date()}" in body["message"]

    with pytest.raises(ThinHoldoutError, match=f"possible as of {END.date()}"):
        learn(factory, settings, trigger=Trigger.demand, actor="t")
    # an automatic trigger's job skips quietly: logged, its result says why, nothing stored
    with factory() as session, session.begin():
        queued = jobs.submit(session, JobKind.learn, LearnParams(trigger=Trigger.schedule), "t")
    with caplog.at_level(logging.INFO, logger="service.learning.jobs"):
        assert job_runner(factory, settings).run_once()
    with factory() as session:
        job = jobs.get(session, queued.id)
    assert job.status == "succeeded", job.error
    result = job.result or {}
    assert result["outcome"] == "not_run"
    assert "holds 0 orders" in result["reasons"][0]
    assert "not run: the 60-day holdout" in caplog.text

    monkeypatch.setenv("CLV_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("CLV_MODEL_DIR", str(settings.model_dir))
    ran = CliRunner().invoke(app, ["learning", "run"], env={"COLUMNS": "1000"})
    assert ran.exit_code == 1
    errors = [line for line in ran.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, ran.output
    assert "holds 0 orders" in errors[0]
    assert f"a fair run is possible as of {END.date()}" in errors[0]

    assert _decision_count(factory) == 0
    with factory() as session:
        assert versions.aliases(session) == {"champion": original}
