"""A simulated shop whose organic customers buy a fifth as often from day 400 on, stored once
per backend with a champion trained on its first 330 days; the tests check drift against it.

Shared by the drift tests (building it takes ~10 s a backend): each test that stores checks or
queues jobs starts by clearing both (``reset``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import delete
from sqlalchemy.orm import Session, sessionmaker

from service.config import Settings
from service.db import migrations
from service.db.session import make_engine, make_session_factory
from service.jobs.models import Job
from service.ml.clv_model import ClvModel
from service.ml.training import train
from service.model_versions import service as registry
from service.reports.models import Report
from service.simulator.config import Shift, ShopConfig
from service.simulator.files import write_shop
from service.simulator.memory import shop_log
from service.webhooks.models import WebhookDelivery
from tests.conftest import FAST, import_shop, new_database_url

SHIFT_DAY = 400
SHIFTED = ShopConfig(
    customers=4_000,
    days=540,
    start=date(2024, 1, 1),
    horizon_days=1,
    seed=3,
    shift=Shift(SHIFT_DAY, "organic", 0.2),
)
"""Organic is the largest channel (35% of customers); from day 400 (2025-02-04) its customers
buy a fifth as often. The events end on day 540 (2025-06-24)."""
TRAINED_DAY = 330
ORIGIN = datetime.combine(SHIFTED.start, datetime.min.time(), UTC)


def day(number: int) -> datetime:
    """The moment ``number`` days after the shop opened."""
    return ORIGIN + timedelta(days=number)


@dataclass(frozen=True)
class DriftShop:
    settings: Settings
    factory: sessionmaker[Session]
    version: str


@pytest.fixture(scope="session")
def shifted_model() -> ClvModel:
    """Trained (the quick test configuration) on the shop's first 330 days, its network serving
    everyone whatever the selection chose: the thresholds below were measured on the network's
    scores, which follow a shift in behaviour faster than a BTYD model's."""
    log, profiles, sources = shop_log(SHIFTED)
    model = train(log.until(day(TRAINED_DAY)), profiles, sources, day(TRAINED_DAY), FAST)
    assert model.serving is not None
    return replace(model, serving=replace(model.serving, served="deep"))


@pytest.fixture(scope="session")
def drift_shop(
    database_url: str,
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    shifted_model: ClvModel,
) -> Iterator[DriftShop]:
    """The shifted shop in a database of its own (of ``database_url``'s backend), with the
    model registered as champion."""
    backend = "sqlite" if database_url.startswith("sqlite") else "postgresql"
    folder = tmp_path_factory.mktemp("drift")
    url = new_database_url(backend, folder, request)
    migrations.upgrade(url)
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        database_url=url,
        worker="off",
        model_dir=folder / "models",
        monitor_interval_minutes=0,
    )
    engine = make_engine(settings)
    factory = make_session_factory(engine)
    write_shop(SHIFTED, folder / "shop")
    import_shop(settings, factory, folder / "shop")
    with factory() as session, session.begin():
        version = registry.register(session, settings.model_dir, shifted_model, {}, "test")
    yield DriftShop(settings, factory, version.version)
    engine.dispose()


def reset(shop: DriftShop) -> None:
    """Forget the stored checks, every job (the champion's rescoring included) and every
    webhook delivery."""
    with shop.factory() as session, session.begin():
        session.execute(delete(Report))
        session.execute(delete(Job))
        session.execute(delete(WebhookDelivery))


@pytest.fixture
def shop(drift_shop: DriftShop) -> DriftShop:
    reset(drift_shop)
    return drift_shop
