"""One served shop per backend for the fuzzers: the tests' simulated shop with its champion
(``shop_model``) that has scored everyone, so the scoring, report and model operations answer 200
with real bodies (and their schemas are checked) instead of only 404 "no champion".

Built once per test session and backend; the tests then share it, so what one request stores or
erases the next one sees, as on a real server.

The backends are PostgreSQL, the production store, when the run includes it (the whole
schemathesis run takes about a minute per backend on two cores), else SQLite;
``CLV_TEST_FUZZ_BACKENDS=sqlite,postgresql`` runs both.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from sqlalchemy.orm import Session, sessionmaker

from service.auth import service as auth
from service.config import Settings
from service.db import migrations
from service.db.session import make_engine, make_session_factory
from service.ml.clv_model import ClvModel
from tests.conftest import BACKENDS, new_database_url, score_everyone, serve_app, store_shop

FUZZ_BACKENDS = [
    backend
    for backend in os.environ.get(
        "CLV_TEST_FUZZ_BACKENDS", "postgresql" if "postgresql" in BACKENDS else ",".join(BACKENDS)
    ).split(",")
    if backend in BACKENDS
]


@dataclass(frozen=True)
class Target:
    """A served, scored shop: where it answers, an admin key, and its database."""

    base_url: str
    token: str
    settings: Settings
    session_factory: sessionmaker[Session]

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@pytest.fixture(scope="session", params=FUZZ_BACKENDS)
def scored_target(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    shop_model: ClvModel,
) -> Iterator[Target]:
    folder = tmp_path_factory.mktemp("fuzz")
    url = new_database_url(request.param, folder, request)
    migrations.upgrade(url)
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=url,
        worker="off",
        model_dir=folder / "models",
    )
    engine = make_engine(settings)
    factory = make_session_factory(engine)
    store_shop(settings, factory, folder / "shop")
    score_everyone(settings, factory, shop_model)
    with factory() as session, session.begin():
        _, token = auth.create_key(session, "fuzz-admin", auth.parse_scopes(["admin"]))
    with serve_app(settings) as base_url:
        yield Target(base_url, token, settings, factory)
    engine.dispose()
