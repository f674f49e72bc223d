"""A simulated shop in the test database with a champion trained on it and everyone scored,
through the real path: registering the first model queues the rescoring job, a runner runs it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from service.config import Settings
from service.db.session import make_session_factory
from service.jobs.runner import JobRunner
from service.jobs.worker import drain
from service.ml.clv_model import ClvModel
from service.ml.training import train
from service.model_versions import service as registry
from service.scoring.models import Score
from tests.conftest import SHOP
from tests.ml.shop_data import end_of_observation, shop_log
from tests.model_versions.conftest import FAST


@pytest.fixture(scope="session")
def shop_model() -> ClvModel:
    """Trained on the whole shop (observed and future events), as a service trains today."""
    log, profiles, sources = shop_log(SHOP)
    return train(
        log, profiles, sources, end_of_observation(SHOP) + timedelta(days=SHOP.horizon_days), FAST
    )


def top_customer(db: Engine) -> str:
    """The customer with the highest stored score."""
    with make_session_factory(db)() as session:
        return str(session.scalar(select(Score.customer_id).order_by(Score.clv.desc()).limit(1)))


@dataclass(frozen=True)
class ScoredShop:
    settings: Settings
    version: str
    folder: Path


@pytest.fixture
def scored_shop(
    model_settings: Settings, db: Engine, shop_in_database: Path, shop_model: ClvModel
) -> ScoredShop:
    factory = make_session_factory(db)
    drain(factory)
    with factory() as session, session.begin():
        version = registry.register(session, model_settings.model_dir, shop_model, {}, "test")
    runner = JobRunner(factory, model_settings)
    while runner.run_once():
        pass
    return ScoredShop(model_settings, version.version, shop_in_database)
