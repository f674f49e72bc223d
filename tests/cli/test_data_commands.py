"""clv simulate and clv import-events, into the database and into a running service."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select, text
from typer.testing import CliRunner

from service.cli import app
from service.config import Settings
from service.db.session import make_engine
from service.events.models import Event
from service.events.worker import IMPORTED_TABLES
from service.portrait.models import Product
from tests.conftest import KeyFactory, bearer

runner = CliRunner()


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> Settings:
    monkeypatch.setenv("CLV_DATABASE_URL", settings.database_url)
    return settings


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    folder = tmp_path / "shop"
    result = runner.invoke(
        app,
        ["simulate", "--out", str(folder), "--customers", "120", "--days", "200",
         "--horizon-days", "60", "--seed", "3"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return folder


def count(db: Engine, model: type) -> int:
    with db.connect() as connection:
        return int(connection.scalar(select(func.count()).select_from(model)) or 0)


def test_simulate_writes_a_shop_folder(shop: Path) -> None:
    summary = json.loads((shop / "shop.json").read_text())

    assert {p.name for p in shop.iterdir()} == {
        "events.jsonl", "profiles.jsonl", "truth.csv", "catalogue.csv", "shop.json",
    }  # fmt: skip
    assert summary["counts"]["customers"] == 120
    assert sum(1 for _ in (shop / "events.jsonl").open()) == summary["counts"]["events"]
    assert sum(1 for _ in (shop / "truth.csv").open()) == 121


def test_simulate_refuses_bad_flags(tmp_path: Path) -> None:
    bad_channel = runner.invoke(
        app, ["simulate", "--out", str(tmp_path), "--shift-day", "10", "--shift-channel", "tv"]
    )
    bad_date = runner.invoke(app, ["simulate", "--out", str(tmp_path), "--start", "soon"])

    assert bad_channel.exit_code == 1
    assert "unknown channel 'tv'" in bad_channel.output
    assert bad_date.exit_code == 1
    assert "is not a date" in bad_date.output


def test_import_events_loads_a_folder_and_a_rerun_adds_nothing(
    env: Settings, shop: Path, db: Engine, client: TestClient, make_key: KeyFactory
) -> None:
    events = json.loads((shop / "shop.json").read_text())["counts"]["events"]

    first = runner.invoke(app, ["import-events", str(shop)])
    again = runner.invoke(app, ["import-events", str(shop)])

    assert first.exit_code == 0, first.output
    assert f"rows {events}: imported {events}, duplicates 0, rejected 0" in first.stdout
    assert f"rows {events}: imported 0, duplicates {events}, rejected 0" in again.stdout
    assert count(db, Event) == events
    with db.connect() as connection:
        described = connection.scalar(select(func.count()).where(Product.description.is_not(None)))
    assert described == 480  # the simulated catalogue, descriptions from catalogue.csv
    customer = client.get("/v1/customers/C0000001", headers=bearer(make_key("read"))).json()
    assert customer["profile"]["acquisition_channel"]["source"] == "platform"
    assert customer["features"]


def test_an_import_leaves_postgresql_statistics_of_what_it_filled(
    postgres_settings: Settings, shop: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Queries right after an import (training, scoring by customer) are planned on the
    tables' statistics rather than on none until autovacuum's turn."""
    monkeypatch.setenv("CLV_DATABASE_URL", postgres_settings.database_url)

    imported = runner.invoke(app, ["import-events", str(shop)])

    assert imported.exit_code == 0, imported.output
    engine = make_engine(postgres_settings)
    with engine.connect() as connection:
        estimated = dict(
            connection.execute(  # -1: never analyzed
                text("SELECT relname, reltuples FROM pg_class WHERE relname = ANY(:tables)"),
                {"tables": list(IMPORTED_TABLES)},
            ).all()
        )
    engine.dispose()
    assert set(estimated) == set(IMPORTED_TABLES)
    assert all(rows > 0 for rows in estimated.values()), estimated


def test_import_events_sends_to_a_running_service(
    live_server: str, shop: Path, db: Engine, make_key: KeyFactory
) -> None:
    events = json.loads((shop / "shop.json").read_text())["counts"]["events"]
    token = make_key("ingest")

    result = runner.invoke(
        app, ["import-events", str(shop), "--url", live_server, "--api-key", token]
    )
    missing_key = runner.invoke(app, ["import-events", str(shop), "--url", live_server])

    assert result.exit_code == 0, result.output
    assert f"rows {events}: imported {events}" in result.stdout
    assert count(db, Event) == events
    assert missing_key.exit_code == 1


def test_import_events_to_an_unreachable_service_fails_with_a_message(shop: Path) -> None:
    result = runner.invoke(
        app, ["import-events", str(shop), "--url", "http://127.0.0.1:9", "--api-key", "clv_x_y"]
    )

    assert result.exit_code == 1
    assert "cannot reach http://127.0.0.1:9" in result.output
