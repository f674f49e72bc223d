"""``clv db``: the schema, through Alembic migrations."""

# Beyond typer, rich and the standard library, imports go inside the commands: --help is instant.
from __future__ import annotations

from typing import Annotated

import typer

from service.cli.common import console, load_settings

db_app = typer.Typer(help="Database schema (Alembic migrations).", no_args_is_help=True)


@db_app.command("upgrade")
def db_upgrade(
    revision: Annotated[str, typer.Option(help="Target revision.")] = "head",
) -> None:
    """Apply the migrations up to --revision (the latest by default)."""
    from service.db import migrations
    from service.db.session import make_engine

    settings = load_settings()
    migrations.upgrade(settings.database_url, revision)
    engine = make_engine(settings)
    try:
        console.print(f"database at revision {migrations.current_revision(engine)}")
    finally:
        engine.dispose()
