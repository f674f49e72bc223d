"""A small simulated shop in the test database, and a model trained on it."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine

from service.config import Settings
from service.customers.service import ProfilePolicy
from service.db.session import make_session_factory
from service.events.service import IngestRules
from service.ml.clv_model import ClvModel
from service.ml.training import TrainConfig, train
from service.privacy import PiiHasher
from service.shop_files import ShopFiles, load_folder
from service.simulator.config import ShopConfig
from service.simulator.files import write_shop
from tests.ml.shop_data import end_of_observation, shop_log

SHOP = ShopConfig(customers=600, days=400, horizon_days=200, seed=9, start=ShopConfig().start)
FAST = TrainConfig(horizon_days=90, epochs=4, hidden=8, cutoffs=2, sequence_length=8)


@pytest.fixture
def model_settings(settings: Settings, tmp_path: Path) -> Settings:
    return settings.model_copy(update={"model_dir": tmp_path / "models"})


@pytest.fixture(scope="session")
def small_model() -> ClvModel:
    log, profiles, sources = shop_log()
    return train(log, profiles, sources, end_of_observation(), FAST)


@pytest.fixture
def shop_in_database(
    settings: Settings, db: Engine, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """The shop's observed and future events, profiles and catalogue, stored."""
    folder = tmp_path_factory.mktemp("shop")
    write_shop(SHOP, folder, with_future=True)
    pii = PiiHasher.from_settings(settings)
    rules = IngestRules.from_settings(settings, pii)
    policy = ProfilePolicy.from_settings(settings, pii)
    factory = make_session_factory(db)
    load_folder(ShopFiles.at(folder), factory, rules, policy)
    load_folder(ShopFiles(folder / "future.jsonl"), factory, rules, policy)
    return folder
