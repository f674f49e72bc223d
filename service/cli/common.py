"""What every command shares: the console, readable failures, settings, a checked database."""

# Beyond typer, rich and the standard library, imports go inside the commands: --help is instant.
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, time
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

    from service.config import Settings
    from service.db.timeouts import Role
    from service.ml.training import Progress as ProgressCallback

console = Console(soft_wrap=True, highlight=False)
err_console = Console(stderr=True)


def fail(message: str) -> typer.Exit:
    err_console.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code=1)


def load_settings() -> Settings:
    """The settings from the environment, or a readable refusal instead of a traceback."""
    from pydantic import ValidationError

    from service.config import Settings

    try:
        return Settings()
    except ValidationError as error:
        problems = "; ".join(
            f"CLV_{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}" if e["loc"] else e["msg"]
            for e in error.errors(include_url=False)
        )
        raise fail(f"invalid settings: {problems}") from None


@contextmanager
def session_factory(
    settings: Settings, role: Role | None = None
) -> Iterator[sessionmaker[Session]]:
    """A session factory on a database that is at the code's schema; errors become messages.
    The role (default: jobs) sets the connections' time limits (``service.db.timeouts``)."""
    from service.db import migrations
    from service.db.session import make_engine, make_session_factory
    from service.db.timeouts import Role
    from service.errors import SchemaNotReadyError, ServiceError

    engine = make_engine(settings, role or Role.jobs)
    try:
        migrations.ensure_schema_current(engine)
        yield make_session_factory(engine)
    except SchemaNotReadyError as error:
        raise fail(str(error)) from None
    except ServiceError as error:
        raise fail(error.message) from None
    finally:
        engine.dispose()


@contextmanager
def transaction(settings: Settings) -> Iterator[Session]:
    with session_factory(settings) as factory, factory() as session, session.begin():
        yield session


AsOf = Annotated[
    str | None,
    typer.Option(help="ISO time, or a date meaning the end of that day (UTC); default: now."),
]
Epochs = Annotated[int, typer.Option(min=1, help="Upper bound on training epochs.")]


def parse_as_of(value: str | None) -> datetime:
    if value is None:
        return datetime.now(UTC)
    try:
        if len(value) == 10:
            return datetime.combine(date.fromisoformat(value), time.max, UTC)
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise fail(f"--as-of {value!r} is not an ISO date or time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@contextmanager
def stages(description: str) -> Iterator[ProgressCallback]:
    """A progress bar that a long step (training, a backtest, a drift check) reports to."""
    columns = (TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn())
    with Progress(*columns, console=err_console) as progress:
        task = progress.add_task(description, total=1.0)
        yield lambda stage, done: progress.update(task, completed=done, description=stage)
