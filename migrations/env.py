"""Alembic environment: runs against the URL set by ``service.db.migrations.alembic_config``."""

from alembic import context
from sqlalchemy import engine_from_config, pool

import service.models  # noqa: F401  (registers every table on Base.metadata)
from service.db.base import Base
from service.events.partitions import compared

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    connectable = engine_from_config(
        config.get_section(config.config_ini_section, {}),
        prefix="sqlalchemy.",
        poolclass=pool.NullPool,
    )
    with connectable.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
            include_name=compared,
        )
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported; run clv db upgrade")
run_migrations_online()
