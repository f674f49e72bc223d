"""Alembic, driven from code: ``clv db upgrade`` and the start-up check that the schema is current.

The scripts live in ``migrations/`` at the repository root (and inside the wheel, where the build
copies them to ``service/migrations``).
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from service.errors import SchemaNotReadyError

_PACKAGE_DIR = Path(__file__).resolve().parent.parent


def _migrations_dir() -> Path:
    for candidate in (_PACKAGE_DIR / "migrations", _PACKAGE_DIR.parent / "migrations"):
        if (candidate / "env.py").is_file():
            return candidate
    raise FileNotFoundError("the Alembic migrations folder is missing from this installation")


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(_migrations_dir()))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(database_url), revision)


def head_revision(database_url: str) -> str | None:
    return ScriptDirectory.from_config(alembic_config(database_url)).get_current_head()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def ensure_schema_current(engine: Engine) -> None:
    """Refuse to serve a database that is not at the code's schema, naming the fix."""
    url = engine.url.render_as_string(hide_password=False)
    head = head_revision(url)
    current = current_revision(engine)
    if current != head:
        state = "not migrated" if current is None else f"at revision {current}"
        raise SchemaNotReadyError(
            f"The database {engine.url.render_as_string(hide_password=True)} is {state}; "
            f"this version of clv-service needs revision {head}. Run: clv db upgrade"
        )
