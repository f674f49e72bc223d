"""Migrations: the only way the schema changes, and they agree with the models."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect

import service.models  # noqa: F401  (the full metadata)
from service.db import migrations
from service.db.base import Base
from service.events.partitions import compared


def test_models_and_migrations_agree(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            opts = {"compare_type": True, "include_name": compared}
            context = MigrationContext.configure(connection, opts=opts)
            assert compare_metadata(context, Base.metadata) == []
    finally:
        engine.dispose()


def test_upgrade_downgrade_upgrade_round_trip(empty_database_url: str) -> None:
    engine = create_engine(empty_database_url)
    try:
        migrations.upgrade(empty_database_url)
        assert migrations.current_revision(engine) == migrations.head_revision(empty_database_url)
        assert {"events", "customer_attributes", "api_keys"} <= set(
            inspect(engine).get_table_names()
        )

        from alembic import command

        command.downgrade(migrations.alembic_config(empty_database_url), "base")
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}

        migrations.upgrade(empty_database_url)
        assert migrations.current_revision(engine) == migrations.head_revision(empty_database_url)
    finally:
        engine.dispose()
