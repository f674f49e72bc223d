"""Settings: environment variables, and refusal of unsafe defaults outside development."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from service.config import Settings
from service.privacy import PiiHasher


def test_settings_come_from_clv_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLV_CURRENCY", "EUR")
    monkeypatch.setenv("CLV_MAX_BATCH_EVENTS", "500")
    monkeypatch.setenv("CLV_SOURCE_PRECEDENCE", "platform, crm")
    monkeypatch.setenv("CLV_DEVICE", "cpu")

    settings = Settings(_env_file=None)  # type: ignore[call-arg]

    assert settings.currency == "EUR"
    assert settings.max_batch_events == 500
    assert settings.source_precedence == ["platform", "crm"]
    assert settings.device == "cpu"
    assert settings.database_url == "sqlite:///./clv.db"


def test_production_refuses_the_development_pii_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLV_ENVIRONMENT", "production")

    with pytest.raises(ValidationError, match="CLV_PII_SECRET must be set"):
        Settings(_env_file=None)  # type: ignore[call-arg]

    monkeypatch.setenv("CLV_PII_SECRET", "a-long-private-production-secret")
    assert Settings(_env_file=None).environment == "production"  # type: ignore[call-arg]


def test_invalid_settings_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLV_CURRENCY", "dollars")
    with pytest.raises(ValidationError, match="currency"):
        Settings(_env_file=None)  # type: ignore[call-arg]


def test_pii_hashes_are_keyed_and_normalised() -> None:
    one = PiiHasher("secret-one", ["email"])
    two = PiiHasher("secret-two", ["email"])

    assert one.hash_value("email", " Ann@Example.COM") == one.hash_value("email", "ann@example.com")
    assert one.hash_value("email", "ann@example.com") != two.hash_value("email", "ann@example.com")
    assert one.scrub({"email": "a@b.c", "city": "Oslo", "phone": None}) == {
        "email": one.hash_value("email", "a@b.c"),
        "city": "Oslo",
        "phone": None,
    }
