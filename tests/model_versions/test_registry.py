"""The model registry over the API: versions, aliases, promotion with verification, rollback,
the promotion log; training as a job with progress, result and cancellation."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from service.background import job_runner
from service.config import Settings
from service.db.session import make_session_factory
from service.jobs import repository as jobs_repository
from service.jobs.models import Job
from service.jobs.runner import JobReporter
from service.main import create_app
from service.ml import artifacts
from service.ml.clv_model import ClvModel
from service.model_versions import artifact_store
from service.model_versions import service as registry
from tests.conftest import KeyFactory, bearer
from tests.prometheus import sample


def register(db: Engine, settings: Settings, model: ClvModel, note: str) -> str:
    with make_session_factory(db)() as session, session.begin():
        return registry.register(session, settings.model_dir, model, {"note": note}, "test").version


def test_versions_aliases_promotion_log_and_rollback(
    model_settings: Settings, db: Engine, small_model: ClvModel, make_key: KeyFactory
) -> None:
    first = register(db, model_settings, small_model, "first")
    second = register(db, model_settings, small_model, "second")
    admin = bearer(make_key("admin"))

    with TestClient(create_app(model_settings)) as client:
        listed = {v["version"]: v for v in client.get("/v1/models", headers=admin).json()}
        one = client.get(f"/v1/models/{second}", headers=admin).json()
        promoted = client.post(f"/v1/models/{second}/promote", json={}, headers=admin).json()
        after = client.get(f"/v1/models/{second}", headers=admin).json()
        rolled = client.post("/v1/models/rollback", json={"alias": "champion"}, headers=admin)
        log = client.get("/v1/promotions", headers=admin).json()
        missing = client.get("/v1/models/nope", headers=admin)

    assert listed[first]["aliases"] == ["champion"]
    assert listed[second]["aliases"] == ["challenger"]
    assert one["horizon_days"] == 90
    assert one["data_to"].startswith("2025-02")
    assert (promoted["previous_version"], promoted["version"]) == (first, second)
    assert sorted(after["aliases"]) == ["challenger", "champion"]
    assert rolled.status_code == 200
    assert (rolled.json()["previous_version"], rolled.json()["version"]) == (second, first)
    assert [(e["action"], e["alias"]) for e in log] == [
        ("rollback", "champion"),
        ("promote", "champion"),
        ("register", "challenger"),
        ("register", "champion"),
    ]
    assert log[0]["actor"].startswith("key-")
    assert missing.status_code == 404


def damage(db: Engine, settings: Settings, version: str, how: str) -> None:
    """Break a registered artifact as disks, copies and upgrades do: flipped bytes, a file cut
    short, or intact files of a feature schema this service no longer computes; in the local
    folder and in the model store alike (from which a process would otherwise fetch it again)."""
    folder = Path(settings.model_dir) / version
    weights = folder / artifacts.WEIGHTS
    if how == "corrupt":
        data = bytearray(weights.read_bytes())
        data[-10:] = b"\x00" * 10
        weights.write_bytes(bytes(data))
    elif how == "truncated":
        weights.write_bytes(weights.read_bytes()[:100])
    else:
        config = json.loads((folder / artifacts.CONFIG).read_text())
        config["feature_names"] = [*config["feature_names"][:-1], "a_feature_we_do_not_compute"]
        (folder / artifacts.CONFIG).write_text(json.dumps(config))
        checksum = artifacts.digest(folder)
        (folder / artifacts.CHECKSUM).write_text(checksum)
        with make_session_factory(db)() as session, session.begin():
            registry.get_version(session, version).sha256 = checksum
    with make_session_factory(db)() as session, session.begin():
        artifact_store.upload(session, version, folder)


DAMAGES = {"corrupt": "corrupt", "truncated": "corrupt", "mismatched": "different feature schema"}


@pytest.mark.parametrize(("how", "reason"), DAMAGES.items())
def test_a_damaged_artifact_is_refused_at_promotion_and_the_champion_stays(
    model_settings: Settings,
    db: Engine,
    small_model: ClvModel,
    make_key: KeyFactory,
    how: str,
    reason: str,
) -> None:
    champion = register(db, model_settings, small_model, "good")
    broken = register(db, model_settings, small_model, "broken")
    damage(db, model_settings, broken, how)
    admin = bearer(make_key("admin"))

    with TestClient(create_app(model_settings)) as client:
        refused = client.post(f"/v1/models/{broken}/promote", json={}, headers=admin)
        versions = {v["version"]: v for v in client.get("/v1/models", headers=admin).json()}

    assert refused.status_code == 409
    assert refused.json()["code"] == "artifact_refused"
    assert reason in refused.json()["message"]
    assert versions[champion]["aliases"] == ["champion"]


@pytest.mark.parametrize(("how", "reason"), DAMAGES.items())
def test_a_champion_damaged_after_promotion_is_refused_visibly_and_the_loaded_one_serves(
    model_settings: Settings,
    db: Engine,
    small_model: ClvModel,
    make_key: KeyFactory,
    caplog: pytest.LogCaptureFixture,
    how: str,
    reason: str,
) -> None:
    first = register(db, model_settings, small_model, "first")
    second = register(db, model_settings, small_model, "second")
    admin = bearer(make_key("admin"))

    with TestClient(create_app(model_settings)) as client:
        before = client.get("/v1/serving", headers=admin).json()
        client.post(f"/v1/models/{second}/promote", json={}, headers=admin).raise_for_status()
        damage(db, model_settings, second, how)
        after = client.get("/v1/serving", headers=admin).json()
        scraped = client.get("/metrics").text

    assert (before["registered"], before["serving"], before["refused"]) == (first, first, [])
    assert (after["registered"], after["serving"]) == (second, first)
    assert [r["version"] for r in after["refused"]] == [second]
    assert reason in after["refused"][0]["reason"]
    assert sample(scraped, "clv_model_loaded", alias="champion", version=first) == 1
    assert sample(scraped, "clv_model_refusals_total", alias="champion") >= 1
    assert any(second in r.getMessage() and r.levelname == "ERROR" for r in caplog.records)


def run_job(db: Engine, settings: Settings) -> bool:
    return job_runner(make_session_factory(db), settings).run_once()


def test_training_job_runs_with_progress_and_registers_the_champion(
    model_settings: Settings, db: Engine, shop_in_database: Path, make_key: KeyFactory
) -> None:
    admin = bearer(make_key("admin"))
    with TestClient(create_app(model_settings)) as client:
        body = {"horizon_days": 60, "as_of": "2025-02-04T00:00:00Z", "epochs": 2}
        queued = client.post("/v1/models", json=body, headers=admin)
        assert run_job(db, model_settings)
        job = client.get(f"/v1/jobs/{queued.json()['id']}", headers=admin).json()
        models = client.get("/v1/models", headers=admin).json()
        assert run_job(db, model_settings)  # the new champion's rescoring of everyone
        rescore = client.get(f"/v1/jobs/{queued.json()['id'] + 1}", headers=admin).json()

    assert queued.status_code == 202
    assert queued.json()["status"] == "queued"
    assert job["status"] == "succeeded", job["error"]
    assert job["progress"] == 1.0
    assert job["result"]["aliases"] == ["champion"]
    assert [m["version"] for m in models] == [job["result"]["version"]]
    metrics = models[0]["metrics"]
    assert metrics["held_out"]["deep"]["customers"] > 0
    assert metrics["served"] in metrics["candidates"]
    assert set(metrics["candidates"]) == {"bgnbd", "paretonbd", "deep", "blend"}
    assert (rescore["kind"], rescore["status"]) == ("rescore", "succeeded")
    assert rescore["result"]["customers"] == 600
    assert not run_job(db, model_settings)  # nothing left queued


def test_a_job_the_data_cannot_support_fails_with_the_reason(
    model_settings: Settings, db: Engine, shop_in_database: Path, make_key: KeyFactory
) -> None:
    admin = bearer(make_key("admin"))
    with TestClient(create_app(model_settings)) as client:
        body = {"horizon_days": 60, "as_of": "2024-02-15T00:00:00Z", "epochs": 1}
        queued = client.post("/v1/models", json=body, headers=admin).json()
        run_job(db, model_settings)
        job = client.get(f"/v1/jobs/{queued['id']}", headers=admin).json()
        bad = client.post(
            "/v1/models", json={"horizon_days": 60, "architecture": "x"}, headers=admin
        )
        ahead = client.post(
            "/v1/models",
            json={"horizon_days": 60, "as_of": (datetime.now(UTC) + timedelta(days=2)).isoformat()},
            headers=admin,
        )

    assert job["status"] == "failed"
    assert "training needs at least" in job["error"]
    assert (bad.status_code, ahead.status_code) == (422, 422)


def test_jobs_can_be_cancelled_queued_or_running(
    model_settings: Settings, db: Engine, shop_in_database: Path, make_key: KeyFactory
) -> None:
    admin = bearer(make_key("admin"))
    with TestClient(create_app(model_settings)) as client:
        body = {"horizon_days": 60, "as_of": "2025-02-04T00:00:00Z", "epochs": 200}
        waiting = client.post("/v1/models", json=body, headers=admin).json()
        cancelled = client.post(f"/v1/jobs/{waiting['id']}/cancel", headers=admin).json()
        again = client.post(f"/v1/jobs/{waiting['id']}/cancel", headers=admin)
        running = client.post("/v1/models", json=body, headers=admin).json()
        worker = threading.Thread(target=run_job, args=(db, model_settings))
        worker.start()
        deadline = time.monotonic() + 60
        while client.get(f"/v1/jobs/{running['id']}", headers=admin).json()["status"] != "running":
            assert time.monotonic() < deadline
            time.sleep(0.1)
        client.post(f"/v1/jobs/{running['id']}/cancel", headers=admin)
        worker.join(timeout=120)
        stopped = client.get(f"/v1/jobs/{running['id']}", headers=admin).json()

    assert cancelled["status"] == "cancelled"
    assert again.status_code == 409
    assert stopped["status"] == "cancelled"
    assert stopped["cancel_requested"] is True


def running_job(db: Engine, stage: str) -> int:
    """A job row as a worker leaves it running, last stamped an hour ago; its id."""
    long_ago = datetime.now(UTC) - timedelta(hours=1)
    with make_session_factory(db)() as session, session.begin():
        job = Job(
            kind="train",
            params={},
            status="running",
            progress=0.3,
            stage=stage,
            cancel_requested=False,
            created_by="test",
            created_at=long_ago,
            started_at=long_ago,
            heartbeat_at=long_ago,
        )
        return jobs_repository.add_job(session, job).id


def test_a_job_whose_worker_died_is_marked_failed(model_settings: Settings, db: Engine) -> None:
    job_id = running_job(db, "epoch 3")
    runner = job_runner(make_session_factory(db), model_settings, poll_seconds=0.01)
    stopper = threading.Timer(0.3, runner.stop)
    stopper.start()
    runner.run()

    with make_session_factory(db)() as session:
        died = jobs_repository.get_job(session, job_id)
    assert died is not None
    assert (died.status, died.error) == ("failed", jobs_repository.ABANDONED)


def test_a_running_job_beats_so_no_runner_fails_it_until_its_worker_stops(
    model_settings: Settings, db: Engine
) -> None:
    factory = make_session_factory(db)
    job_id = running_job(db, "building examples")  # a long stage that reports no progress
    sweeper = job_runner(
        factory, model_settings.model_copy(update={"job_abandoned_after_seconds": 2.0})
    )

    with JobReporter(factory, job_id).heartbeat(every=0.1):
        time.sleep(1.0)
        assert sweeper.fail_abandoned() == 0
        time.sleep(2.5)  # longer than the timeout: only the beats keep it alive
        assert sweeper.fail_abandoned() == 0
    time.sleep(2.5)  # the worker is gone: no more beats
    assert sweeper.fail_abandoned() == 1


def test_undefined_metrics_are_stored_as_null(
    model_settings: Settings, db: Engine, small_model: ClvModel
) -> None:
    """A shop where nobody bought in the validation window has no Spearman or decile MAPE:
    NaN, which PostgreSQL's JSON refuses. It is stored as null instead of failing the job."""
    factory = make_session_factory(db)
    metrics = {"deep": {"spearman": float("nan"), "mae": 1.5}, "btyd": {"rmse": float("inf")}}
    with factory() as session, session.begin():
        version = registry.register(session, model_settings.model_dir, small_model, metrics, "t")
    with factory() as session:
        stored = registry.get_version(session, version.version).metrics
    assert stored == {"deep": {"spearman": None, "mae": 1.5}, "btyd": {"rmse": None}}
