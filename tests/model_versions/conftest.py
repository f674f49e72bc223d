"""A small simulated shop in the test database, and a model trained on it."""

from __future__ import annotations

import pytest

from service.ml.clv_model import ClvModel
from service.ml.training import train
from service.simulator.memory import end_of_observation, shop_log
from tests.conftest import FAST


@pytest.fixture(scope="session")
def small_model() -> ClvModel:
    log, profiles, sources = shop_log()
    return train(log, profiles, sources, end_of_observation(), FAST)
