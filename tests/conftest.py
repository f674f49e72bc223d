"""Fixtures: one migrated database per backend (SQLite and a real PostgreSQL), emptied after each
test; the app behind real HTTP (Starlette's TestClient over ASGI, or a live uvicorn server).

A test that asks for the simulated shop (``shop_in_database``), the shop scored by a champion
(``scored_shop``) or scored and explained (``explained_shop``) gets a database of its own,
cloned from a snapshot built once per backend and xdist worker (PostgreSQL ``CREATE DATABASE …
TEMPLATE``, a file copy on SQLite), with a copy of the snapshot's model folder: building the
shop for each test took 2 to 5 s, a clone takes a fraction of one.

``CLV_TEST_BACKENDS`` (default ``sqlite,postgresql``) chooses the backends and
``CLV_TEST_POSTGRES_URL`` the PostgreSQL server; each run creates and drops its own database.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
import torch
import uvicorn
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from service.api.server import HTTP_PROTOCOL
from service.auth import service as auth
from service.background import job_runner
from service.config import Settings
from service.customers.service import ProfilePolicy
from service.db import migrations
from service.db.base import Base
from service.db.session import make_engine, make_session_factory
from service.events.service import IngestRules
from service.events.worker import drain
from service.main import create_app
from service.ml.clv_model import ClvModel
from service.ml.training import TrainConfig, train
from service.model_versions import service as registry
from service.privacy import PiiHasher
from service.scoring import repository as scores
from service.scoring.service import Scorer, explain_pending
from service.shop_files import ShopFiles, load_folder
from service.simulator.config import ShopConfig
from service.simulator.files import write_shop
from service.simulator.memory import end_of_observation, shop_log

BACKENDS = [b for b in os.environ.get("CLV_TEST_BACKENDS", "sqlite,postgresql").split(",") if b]
SHOP = ShopConfig(customers=600, days=400, horizon_days=200, seed=9, start=ShopConfig().start)
"""The shop ``shop_in_database`` stores."""
FAST = TrainConfig(horizon_days=90, epochs=4, hidden=8, cutoffs=2, sequence_length=8)
"""A small, quick training configuration for tests that need a real model, not a good one."""
POSTGRES_URL = os.environ.get(
    "CLV_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist (``make test`` runs one worker per core), each worker's torch gets its
    share of the cores: N workers with N threads each would fight over them."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1:
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // workers))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Marks ``db`` every test that reaches a database, so ``make test-fast`` (``-m "not db and
    not slow"``) is the inner loop's layer: pure functions, the models and the simulator."""
    for item in items:
        if DATABASE_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.db)


DATABASE_FIXTURES = {"database_url", "postgres_server", "postgres_settings", "scored_target"}


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests see only the settings they set, never the developer's CLV_* variables; and no
    periodic monitoring jobs (drift, accuracy) that would run beside what a test measures,
    unless the test turns them on."""
    for name in list(os.environ):
        if name.startswith("CLV_") and not name.startswith("CLV_TEST_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("CLV_MONITOR_INTERVAL_MINUTES", "0")


class PostgresServer:
    """Creates and drops throw-away databases on the test PostgreSQL server."""

    def __init__(self, admin_url: str) -> None:
        self.admin_url = make_url(admin_url)
        self.engine = create_engine(self.admin_url, isolation_level="AUTOCOMMIT")

    def create_database(self, template: str | None = None) -> str:
        name = f"clv_test_{uuid.uuid4().hex[:12]}"
        copying = f' TEMPLATE "{template}"' if template else ""
        with self.engine.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"{copying}'))
        return self.admin_url.set(database=name).render_as_string(hide_password=False)

    def drop_database(self, url: str) -> None:
        name = make_url(url).database
        with self.engine.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    server = PostgresServer(POSTGRES_URL)
    yield server
    server.engine.dispose()


def new_database_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """An empty database of ``backend``, dropped at the end of the requesting scope."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / f'clv-{uuid.uuid4().hex[:8]}.db'}"
    server: PostgresServer = request.getfixturevalue("postgres_server")
    url = server.create_database()
    request.addfinalizer(lambda: server.drop_database(url))
    return url


@pytest.fixture(scope="session", params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A database migrated to head, shared by the tests of one backend."""
    url = new_database_url(request.param, tmp_path_factory.mktemp("db"), request)
    migrations.upgrade(url)
    return url


@pytest.fixture
def empty_database_url(database_url: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """A fresh, un-migrated database of the same backend as ``database_url``."""
    backend = "sqlite" if database_url.startswith("sqlite") else "postgresql"
    return new_database_url(backend, tmp_path, request)


@pytest.fixture
def postgres_settings(postgres_server: PostgresServer) -> Iterator[Settings]:
    """Settings on a dedicated, migrated PostgreSQL database, for PostgreSQL-only behaviour."""
    if "postgresql" not in BACKENDS:
        pytest.skip("CLV_TEST_BACKENDS excludes postgresql")
    url = postgres_server.create_database()
    migrations.upgrade(url)
    yield Settings(_env_file=None, database_url=url, worker="off")  # type: ignore[call-arg]
    postgres_server.drop_database(url)


def _empty_all_tables(url: str) -> None:
    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            tables = [table.name for table in Base.metadata.sorted_tables]
            if engine.dialect.name == "postgresql":
                connection.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY"))
            else:
                for name in tables:
                    connection.execute(text(f"DELETE FROM {name}"))
    finally:
        engine.dispose()


@dataclass(frozen=True)
class Snapshot:
    """A database to clone (never used by a test itself), the shop files it was loaded from,
    and, once scored, the champion's version and the model folder holding it."""

    url: str
    folder: Path
    version: str = ""
    model_dir: Path | None = None


SNAPSHOTS = (  # the richest snapshot a test's fixtures ask for wins
    ("explained_shop", "explained_snapshot"),
    ("scored_shop", "scored_snapshot"),
    ("shop_in_database", "stored_snapshot"),
)


def clone_database(url: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """A copy of the database at ``url``, dropped at the end of the requesting scope. Nothing
    may be connected to ``url`` (a PostgreSQL template), so snapshots dispose their engines."""
    if url.startswith("sqlite"):
        copy = tmp_path / f"clv-{uuid.uuid4().hex[:8]}.db"
        source_path = str(make_url(url).database)
        with (
            closing(sqlite3.connect(source_path)) as source,
            closing(sqlite3.connect(copy)) as target,
        ):
            source.backup(target)  # whatever the write-ahead log still holds, too
        return f"sqlite:///{copy}"
    server: PostgresServer = request.getfixturevalue("postgres_server")
    clone = server.create_database(template=make_url(url).database)
    request.addfinalizer(lambda: server.drop_database(clone))
    return clone


def _snapshot_for(request: pytest.FixtureRequest) -> Snapshot | None:
    for fixture, snapshot in SNAPSHOTS:
        if fixture in request.fixturenames:
            found: Snapshot = request.getfixturevalue(snapshot)
            return found
    return None


@pytest.fixture
def settings(
    database_url: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Settings]:
    """Settings on the test database: the backend's shared one, emptied after the test, or a
    clone of the shop's snapshot for a test that uses it. The worker is off: tests apply queued
    events with ``apply_pending`` when they need the portrait, so nothing races them."""
    snapshot = _snapshot_for(request)
    if snapshot is None:
        yield Settings(_env_file=None, database_url=database_url, worker="off")  # type: ignore[call-arg]
        _empty_all_tables(database_url)
        return
    model_dir = tmp_path / "models"  # as model_settings has it
    if snapshot.model_dir is not None:  # a copy: the test may register or corrupt versions
        shutil.copytree(snapshot.model_dir, model_dir)
    url = clone_database(snapshot.url, tmp_path, request)
    yield Settings(_env_file=None, database_url=url, worker="off", model_dir=model_dir)  # type: ignore[call-arg]


@pytest.fixture
def backend(settings: Settings) -> str:
    return "sqlite" if settings.is_sqlite else "postgresql"


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client


@pytest.fixture
def db(settings: Settings) -> Iterator[Engine]:
    """An engine on the test database, to set up state and to look at what the service stored."""
    engine = make_engine(settings)
    yield engine
    engine.dispose()


@pytest.fixture
def apply_pending(db: Engine) -> Callable[[], int]:
    """Apply the queued events to the portrait now, as the worker would; returns how many."""
    return lambda: drain(make_session_factory(db))


KeyFactory = Callable[..., str]


@pytest.fixture
def make_key(db: Engine) -> KeyFactory:
    """``make_key("ingest", "read")`` stores a key with those scopes and returns it."""
    factory = make_session_factory(db)

    def make(*scopes: str, name: str | None = None) -> str:
        with factory() as session, session.begin():
            _, token = auth.create_key(
                session, name or f"key-{uuid.uuid4().hex[:8]}", auth.parse_scopes(scopes)
            )
        return token

    return make


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def admin_headers(make_key: KeyFactory) -> dict[str, str]:
    return bearer(make_key("admin"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serve_app(settings: Settings, http: type[asyncio.Protocol] = HTTP_PROTOCOL) -> Iterator[str]:
    """The app served by a real uvicorn on a loopback port (with ``clv serve``'s HTTP protocol,
    unless ``http`` says another); yields its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), log_level="warning", access_log=False, http=http)
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()


@pytest.fixture
def live_server(settings: Settings) -> Iterator[str]:
    with serve_app(settings) as url:
        yield url


@pytest.fixture
def model_settings(settings: Settings, tmp_path: Path) -> Settings:
    return settings.model_copy(update={"model_dir": tmp_path / "models"})


@pytest.fixture
def shop_in_database(settings: Settings, stored_snapshot: Snapshot) -> Path:
    """The shop's observed and future events, profiles and catalogue, stored (in the test's
    clone of ``stored_snapshot``); the folder of its files."""
    return stored_snapshot.folder


def _snapshot_settings(url: str, model_dir: Path | None = None) -> Settings:
    update = {} if model_dir is None else {"model_dir": model_dir}
    settings = Settings(_env_file=None, database_url=url, worker="off")  # type: ignore[call-arg]
    return settings.model_copy(update=update)


@contextmanager
def _session_factory(settings: Settings) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(settings)
    try:
        yield make_session_factory(engine)
    finally:
        engine.dispose()  # nothing may stay connected to a template


@pytest.fixture(scope="session")
def stored_snapshot(
    database_url: str, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Snapshot:
    """``SHOP`` imported into a migrated database of the backend, its future events too."""
    backend = "sqlite" if database_url.startswith("sqlite") else "postgresql"
    url = new_database_url(backend, tmp_path_factory.mktemp("snapshot"), request)
    migrations.upgrade(url)
    folder = tmp_path_factory.mktemp("shop")
    settings = _snapshot_settings(url)
    with _session_factory(settings) as factory:
        store_shop(settings, factory, folder)
    return Snapshot(url, folder)


def store_shop(settings: Settings, factory: sessionmaker[Session], folder: Path) -> None:
    """Write ``SHOP`` to ``folder`` and import it, its future events included."""
    write_shop(SHOP, folder, with_future=True)
    import_shop(settings, factory, folder)


def import_shop(settings: Settings, factory: sessionmaker[Session], folder: Path) -> None:
    """Import a shop folder written by ``write_shop`` (its future events too, when written)."""
    pii = PiiHasher.from_settings(settings)
    rules = IngestRules.from_settings(settings, pii)
    policy = ProfilePolicy.from_settings(settings, pii)
    load_folder(ShopFiles.at(folder), factory, rules, policy)
    if (folder / "future.jsonl").exists():
        load_folder(ShopFiles(folder / "future.jsonl"), factory, rules, policy)


def score_everyone(settings: Settings, factory: sessionmaker[Session], model: ClvModel) -> str:
    """Apply the stored events, register ``model`` as the first champion and run the jobs that
    queues (its rescoring of everyone), as a worker would; the version. The scores' attributions
    are not computed yet (``explain_everyone``), as right after a new champion's rescoring: an
    explained read computes its own."""
    drain(factory)
    with factory() as session, session.begin():
        version = registry.register(session, settings.model_dir, model, {}, "test")
    runner = job_runner(factory, settings)
    while runner.run_once():
        pass
    return version.version


@pytest.fixture(scope="session")
def scored_snapshot(
    stored_snapshot: Snapshot,
    shop_model: ClvModel,
    tmp_path_factory: pytest.TempPathFactory,
    request: pytest.FixtureRequest,
) -> Snapshot:
    """``stored_snapshot`` with its events applied and ``shop_model`` the champion that scored
    everyone (attributions not computed yet)."""
    folder = tmp_path_factory.mktemp("scored")
    settings = _snapshot_settings(
        clone_database(stored_snapshot.url, folder, request), folder / "models"
    )
    with _session_factory(settings) as factory:
        version = score_everyone(settings, factory, shop_model)
    return Snapshot(settings.database_url, stored_snapshot.folder, version, settings.model_dir)


@pytest.fixture(scope="session")
def explained_snapshot(
    scored_snapshot: Snapshot,
    tmp_path_factory: pytest.TempPathFactory,
    request: pytest.FixtureRequest,
) -> Snapshot:
    """``scored_snapshot`` with every stored score's attributions computed, as an idle worker
    leaves it."""
    folder = tmp_path_factory.mktemp("explained")
    settings = _snapshot_settings(  # the scored snapshot's models: explaining only reads them
        clone_database(scored_snapshot.url, folder, request), scored_snapshot.model_dir
    )
    with _session_factory(settings) as factory:
        explain_everyone(settings, factory)
    return Snapshot(
        settings.database_url, scored_snapshot.folder, scored_snapshot.version, settings.model_dir
    )


@pytest.fixture
def explained_shop(scored_shop: ScoredShop) -> ScoredShop:
    """``scored_shop`` with every stored score's attributions computed (the test's clone of
    ``explained_snapshot``)."""
    return scored_shop


def explain_everyone(settings: Settings, factory: sessionmaker[Session]) -> int:
    """Store the attributions of every stored score waiting for them, as an idle worker would;
    returns how many scores were explained."""
    scorer, total = Scorer(settings), 0
    while explained := explain_pending(factory, scorer, limit=1_000):
        total += explained
    return total


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
        return str(scores.most_valuable(session))


@dataclass(frozen=True)
class ScoredShop:
    settings: Settings
    version: str
    folder: Path


@pytest.fixture
def scored_shop(
    model_settings: Settings, shop_in_database: Path, scored_snapshot: Snapshot
) -> ScoredShop:
    """The shop scored by ``shop_model`` as the champion (the test's clone of
    ``scored_snapshot``, or of ``explained_snapshot`` under ``explained_shop``)."""
    return ScoredShop(model_settings, scored_snapshot.version, shop_in_database)
