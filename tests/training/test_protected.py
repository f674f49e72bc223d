"""Fair by default: training leaves the protected attributes (CLV_FAIRNESS_ATTRIBUTES) out
unless CLV_TRAIN_WITH_PROTECTED_ATTRIBUTES or an explicit request asks for them; a request wins
over the setting."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from typer.testing import CliRunner

from service.cli import app
from service.config import Settings
from service.db.session import make_session_factory
from service.errors import InvalidRequestError
from service.main import create_app
from service.ml.clv_model import ClvModel
from service.model_versions.store import load_version
from service.training import protected
from service.training.runner import train_version
from tests.conftest import KeyFactory, bearer

PROTECTED = ("gender", "age_band", "region")


def protected_columns(model: ClvModel) -> set[str]:
    """The protected attributes that have a column among the model's features."""
    return {
        name.split("=")[0].split("__")[0]
        for name in model.feature_names
        if name.split("=")[0].split("__")[0] in PROTECTED
    }


def test_a_request_wins_over_the_setting_which_leaves_them_out_by_default(
    settings: Settings,
) -> None:
    opted_in = settings.model_copy(update={"train_with_protected_attributes": True})
    assert settings.train_with_protected_attributes is False
    assert protected.excluded_attributes(settings) == PROTECTED
    assert protected.excluded_attributes(opted_in) == ()
    assert protected.excluded_attributes(settings, True) == ()
    assert protected.excluded_attributes(opted_in, False) == PROTECTED
    assert protected.requested(with_protected=False, without_protected=False) is None
    assert protected.requested(with_protected=True, without_protected=False) is True
    assert protected.requested(with_protected=False, without_protected=True) is False
    with pytest.raises(InvalidRequestError, match="contradict"):
        protected.requested(with_protected=True, without_protected=True)


def test_the_setting_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLV_TRAIN_WITH_PROTECTED_ATTRIBUTES", "true")
    assert Settings(_env_file=None).train_with_protected_attributes is True  # type: ignore[call-arg]


def test_a_default_model_has_no_protected_columns_and_the_opt_in_puts_them_back(
    model_settings: Settings, db: Engine, shop_in_database: Path
) -> None:
    factory = make_session_factory(db)

    def trained(settings: Settings, **asked: Any) -> ClvModel:
        version = train_version(
            factory,
            settings,
            as_of=datetime(2025, 2, 4, tzinfo=UTC),
            horizon_days=60,
            epochs=1,
            actor="t",
            **asked,
        )
        with factory() as session:
            return load_version(session, settings.model_dir, version.version, "cpu")[1]

    fair = trained(model_settings)
    assert protected_columns(fair) == set()
    assert fair.report.excluded_attributes == tuple(sorted(PROTECTED))
    assert any(name.startswith("acquisition_channel=") for name in fair.feature_names)

    opted_in = model_settings.model_copy(update={"train_with_protected_attributes": True})
    with_them = trained(opted_in)
    assert protected_columns(with_them) == set(PROTECTED)
    assert with_them.report.excluded_attributes == ()

    asked_without = trained(opted_in, with_protected_attributes=False)  # the request wins
    assert protected_columns(asked_without) == set()


def test_the_api_and_the_cli_take_an_explicit_choice_but_not_both(
    model_settings: Settings,
    make_key: KeyFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    admin = bearer(make_key("admin"))
    with TestClient(create_app(model_settings)) as client:
        both = client.post(
            "/v1/models",
            json={
                "horizon_days": 60,
                "with_protected_attributes": True,
                "without_protected_attributes": True,
            },
            headers=admin,
        )
        opted_in = client.post(
            "/v1/models",
            json={"horizon_days": 60, "with_protected_attributes": True},
            headers=admin,
        )
    assert both.status_code == 422
    assert both.json()["code"] == "validation_error"
    assert "contradict" in both.json()["message"]
    assert opted_in.status_code == 202, opted_in.text
    params = opted_in.json()["params"]
    assert params["with_protected_attributes"] is True
    assert params["without_protected_attributes"] is False

    monkeypatch.setenv("CLV_DATABASE_URL", model_settings.database_url)
    flags = ["--with-protected-attributes", "--without-protected-attributes"]
    refused = CliRunner().invoke(app, ["train", "--horizon-days", "60", *flags])
    assert refused.exit_code == 1
    assert "contradict" in refused.output
