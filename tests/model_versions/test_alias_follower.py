"""Every process follows the champion alias: a promotion or rollback made anywhere reaches each
process on its next call, and an artifact broken after promotion never replaces a working model."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from service.config import Settings
from service.db.session import make_session_factory
from service.main import create_app
from service.ml import artifacts
from service.ml.clv_model import ClvModel
from service.model_versions import artifact_store
from service.model_versions.service import ArtifactRefusedError
from service.model_versions.store import AliasFollower
from tests.conftest import KeyFactory, bearer
from tests.model_versions.test_registry import register


def current(db: Engine, follower: AliasFollower) -> str:
    with make_session_factory(db)() as session:
        return follower.current(session)[0]


def test_a_promotion_reaches_every_process_without_a_restart(
    model_settings: Settings, db: Engine, small_model: ClvModel, make_key: KeyFactory
) -> None:
    first = register(db, model_settings, small_model, "first")
    second = register(db, model_settings, small_model, "second")
    processes = [AliasFollower(model_settings.model_dir, "cpu") for _ in range(2)]
    admin = bearer(make_key("admin"))

    before = [current(db, p) for p in processes]
    with TestClient(create_app(model_settings)) as client:
        client.post(f"/v1/models/{second}/promote", json={}, headers=admin).raise_for_status()
        promoted = [current(db, p) for p in processes]
        client.post("/v1/models/rollback", json={}, headers=admin).raise_for_status()
        rolled_back = [current(db, p) for p in processes]

    assert before == [first, first]
    assert promoted == [second, second]
    assert rolled_back == [first, first]


def test_a_champion_broken_after_promotion_leaves_the_loaded_model_serving(
    model_settings: Settings,
    db: Engine,
    small_model: ClvModel,
    make_key: KeyFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    first = register(db, model_settings, small_model, "first")
    second = register(db, model_settings, small_model, "second")
    serving = AliasFollower(model_settings.model_dir, "cpu")
    assert current(db, serving) == first
    admin = bearer(make_key("admin"))
    with TestClient(create_app(model_settings)) as client:
        client.post(f"/v1/models/{second}/promote", json={}, headers=admin).raise_for_status()
    weights = Path(model_settings.model_dir) / second / artifacts.WEIGHTS
    weights.write_bytes(weights.read_bytes()[:100])
    with make_session_factory(db)() as session, session.begin():  # the stored copy too
        artifact_store.upload(session, second, weights.parent)

    assert current(db, serving) == first
    assert current(db, serving) == first
    refusals = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert len(refusals) == 1
    assert second in refusals[0]
    assert "corrupt" in refusals[0]
    with pytest.raises(ArtifactRefusedError, match="corrupt"):
        current(db, AliasFollower(model_settings.model_dir, "cpu"))


def test_reads_may_use_a_champion_checked_at_most_max_age_ago(
    model_settings: Settings, db: Engine, small_model: ClvModel, make_key: KeyFactory
) -> None:
    """An API process answers reads with the champion it checked within
    CLV_CHAMPION_CHECK_SECONDS; what stores scores reads the alias every time."""
    first = register(db, model_settings, small_model, "first")
    second = register(db, model_settings, small_model, "second")
    answering, storing = (AliasFollower(model_settings.model_dir, "cpu") for _ in range(2))
    assert current(db, answering) == current(db, storing) == first
    with TestClient(create_app(model_settings)) as client:
        admin = bearer(make_key("admin"))
        client.post(f"/v1/models/{second}/promote", json={}, headers=admin).raise_for_status()

    factory = make_session_factory(db)
    with factory() as session:
        cached = answering.current(session, max_age=60)[0]
        stored_with = storing.current(session)[0]
    time.sleep(0.25)
    with factory() as session:
        expired = answering.current(session, max_age=0.2)[0]

    assert (cached, stored_with, expired) == (first, second, second)
