"""The clv command line: schema checks, API keys, and a real `clv serve` process."""

from __future__ import annotations

import time
from pathlib import Path

import httpx2 as httpx
import pytest
from typer.testing import CliRunner

from service.cli import app
from service.config import Settings
from tests.conftest import bearer, free_port
from tests.processes import ServerProcess

runner = CliRunner()


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> Settings:
    monkeypatch.setenv("CLV_DATABASE_URL", settings.database_url)
    return settings


def test_serve_refuses_an_unmigrated_database_and_names_the_fix(
    monkeypatch: pytest.MonkeyPatch, empty_database_url: str
) -> None:
    monkeypatch.setenv("CLV_DATABASE_URL", empty_database_url)

    result = runner.invoke(app, ["serve"])

    assert result.exit_code == 1
    assert "not migrated" in result.output
    assert "Run: clv db upgrade" in result.output


def test_db_upgrade_migrates_a_fresh_database(
    monkeypatch: pytest.MonkeyPatch, empty_database_url: str
) -> None:
    monkeypatch.setenv("CLV_DATABASE_URL", empty_database_url)

    upgraded = runner.invoke(app, ["db", "upgrade"])
    again = runner.invoke(app, ["db", "upgrade"])

    assert upgraded.exit_code == 0, upgraded.output
    assert "database at revision" in upgraded.output
    assert again.exit_code == 0


def test_apikey_create_list_revoke(env: Settings) -> None:
    created = runner.invoke(app, ["apikey", "create", "--name", "shop", "--scopes", "ingest,read"])
    token = created.stdout.strip().splitlines()[-1]
    duplicate = runner.invoke(app, ["apikey", "create", "--name", "shop", "--scopes", "read"])
    bad_scope = runner.invoke(app, ["apikey", "create", "--name", "x", "--scopes", "root"])
    listed = runner.invoke(app, ["apikey", "list"])
    revoked = runner.invoke(app, ["apikey", "revoke", "shop"])
    unknown = runner.invoke(app, ["apikey", "revoke", "nobody"])
    listed_after = runner.invoke(app, ["apikey", "list"])

    assert created.exit_code == 0
    assert token.startswith("clv_")
    assert duplicate.exit_code == 1
    assert "exists already" in duplicate.output
    assert bad_scope.exit_code == 1
    assert "unknown scope 'root'" in bad_scope.output
    assert "shop" in listed.stdout
    assert "ingest read" in listed.stdout
    assert token not in listed.stdout
    assert revoked.exit_code == 0
    assert unknown.exit_code == 1
    assert "no API key named 'nobody'" in unknown.output
    assert listed_after.stdout.count(str(time.gmtime().tm_year)) >= 2  # created and revoked


def test_clv_serve_runs_the_api(env: Settings, tmp_path: Path) -> None:
    token = (
        runner.invoke(app, ["apikey", "create", "--name", "serve", "--scopes", "read"])
        .stdout.strip()
        .splitlines()[-1]
    )
    server = ServerProcess(
        free_port(), {"CLV_DATABASE_URL": env.database_url}, tmp_path / "serve.log"
    )
    with server:
        health = httpx.get(f"{server.url}/healthz")
        customer = httpx.get(f"{server.url}/v1/customers/x", headers=bearer(token))
    output = server.output()
    assert server.process is not None

    assert health.json() == {"status": "ok"}
    assert customer.status_code == 404
    # uvicorn shuts down gracefully on SIGTERM, then re-raises the signal as its exit status.
    assert server.process.returncode in (0, -15), output
    assert "Application shutdown complete" in output
    assert '"route": "/v1/customers/{customer_id}"' in output  # JSON access log line
    assert token not in output


def test_invalid_settings_are_refused_with_a_message_not_a_traceback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CLV_ENVIRONMENT", "production")

    result = runner.invoke(app, ["db", "upgrade"])

    assert result.exit_code == 1
    assert "invalid settings" in result.output
    assert "CLV_PII_SECRET must be set" in result.output
    assert "Traceback" not in result.output
