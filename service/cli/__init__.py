"""The ``clv`` command line. Thin: each command parses flags and calls a domain service."""

from __future__ import annotations

import typer

from service.cli import data, drift, forecasts, models, openapi, serving
from service.cli.database import db_app
from service.cli.events import events_app
from service.cli.keys import apikey_app
from service.cli.learning import learning_app
from service.cli.openapi import openapi_document
from service.cli.reports import report_app

app = typer.Typer(
    help="clv-service: customer lifetime value, explained and kept current.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    # Click's plain help: wrapped to the terminal (80 columns at most), option names whole and
    # no type label on flags, where Rich's panels cut names and sentences at 80 columns.
    rich_markup_mode=None,
)
for commands in (serving.app, data.app, models.app, drift.app, forecasts.app, openapi.app):
    app.add_typer(commands)  # without a name: its commands join the top level
app.add_typer(db_app, name="db")
app.add_typer(apikey_app, name="apikey")
app.add_typer(events_app, name="events")
app.add_typer(data.portrait_app, name="portrait")
app.add_typer(models.models_app, name="models")
app.add_typer(learning_app, name="learning")
app.add_typer(report_app, name="report")

__all__ = ["app", "openapi_document"]
