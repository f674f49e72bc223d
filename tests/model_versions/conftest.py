"""A small simulated shop in the test database, and a model trained on it."""

from __future__ import annotations

import pytest

from service.ml.clv_model import ClvModel
from service.ml.training import TrainConfig, train
from service.simulator.config import ShopConfig
from tests.ml.shop_data import end_of_observation, shop_log

SHOP = ShopConfig(customers=600, days=400, horizon_days=200, seed=9, start=ShopConfig().start)
FAST = TrainConfig(horizon_days=90, epochs=4, hidden=8, cutoffs=2, sequence_length=8)


@pytest.fixture(scope="session")
def small_model() -> ClvModel:
    log, profiles, sources = shop_log()
    return train(log, profiles, sources, end_of_observation(), FAST)
