"""Fixtures of the import tests."""

from __future__ import annotations

import pytest

from service.config import Settings


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> Settings:
    """The test database, where the CLI (run in this process) finds it: its environment."""
    monkeypatch.setenv("CLV_DATABASE_URL", settings.database_url)
    return settings
