"""The ``clv`` command line. Thin: each command parses flags and calls a domain service."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Annotated

import typer
import uvicorn
from pydantic import ValidationError
from rich.console import Console
from rich.progress import open as progress_open
from rich.table import Table
from sqlalchemy.orm import Session, sessionmaker

from service.auth import service as auth
from service.config import Settings
from service.db import migrations
from service.db.session import make_engine, make_session_factory
from service.errors import SchemaNotReadyError, ServiceError
from service.events.csv_import import CsvMapping, import_csv
from service.events.models import EventType
from service.events.service import IngestRules
from service.logs import logging_config
from service.privacy import PiiHasher

app = typer.Typer(
    help="clv-service: customer lifetime value, explained and kept current.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database schema (Alembic migrations).", no_args_is_help=True)
apikey_app = typer.Typer(help="API keys.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(apikey_app, name="apikey")

console = Console()
err_console = Console(stderr=True)

OPENAPI_PATH = Path("openapi/openapi.json")


def _fail(message: str) -> typer.Exit:
    err_console.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code=1)


def _settings() -> Settings:
    """The settings from the environment, or a readable refusal instead of a traceback."""
    try:
        return Settings()
    except ValidationError as error:
        problems = "; ".join(
            f"CLV_{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}" if e["loc"] else e["msg"]
            for e in error.errors(include_url=False)
        )
        raise _fail(f"invalid settings: {problems}") from None


@contextmanager
def _session_factory(settings: Settings) -> Iterator[sessionmaker[Session]]:
    """A session factory on a database that is at the code's schema; errors become messages."""
    engine = make_engine(settings)
    try:
        migrations.ensure_schema_current(engine)
        yield make_session_factory(engine)
    except SchemaNotReadyError as error:
        raise _fail(str(error)) from None
    except ServiceError as error:
        raise _fail(error.message) from None
    finally:
        engine.dispose()


@contextmanager
def _transaction(settings: Settings) -> Iterator[Session]:
    with _session_factory(settings) as factory, factory() as session, session.begin():
        yield session


# --- serving -------------------------------------------------------------------------------


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind; 0.0.0.0 for all.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
) -> None:
    """Start the HTTP API (uvicorn). The database must be migrated (clv db upgrade)."""
    settings = _settings()
    with _session_factory(settings):
        pass  # refuses an un-migrated database with the command to run
    uvicorn.run(
        "service.main:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        access_log=False,  # RequestContextMiddleware logs each request, with its request id
        log_config=logging_config(settings.log_level),
        timeout_graceful_shutdown=30,
    )


@app.command()
def demo(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
) -> None:
    """Migrate the database (SQLite by default), create an API key and serve, printing how to
    call the API."""
    settings = _settings()
    migrations.upgrade(settings.database_url)
    with _transaction(settings) as session:
        name = f"demo-{datetime.now(UTC):%Y%m%d-%H%M%S}"
        _, token = auth.create_key(session, name, list(auth.Scope))
    base = f"http://{host}:{port}"
    say = partial(console.print, highlight=False, soft_wrap=True)
    say(f"\n[bold]clv-service[/bold] on {settings.database_url}")
    say(f"API key ({name}, all scopes): [bold]{token}[/bold]")
    say(f"Swagger UI: {base}/docs (press Authorize, paste the key)\n")
    for example in demo_curl_examples(base, token, settings.currency):
        say(example + "\n")
    serve(host=host, port=port, workers=1)


def demo_curl_examples(base: str, token: str, currency: str) -> list[str]:
    """Three calls that work on a fresh demo database, in order."""
    now = datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    event = {
        "event_id": "demo-order-1",
        "customer_id": "demo-customer",
        "type": "purchase",
        "occurred_at": now,
        "amount": "42.50",
        "currency": currency,
    }
    attributes = {"source": "crm", "attributes": {"region": "north", "email": "ann@example.com"}}
    auth_header = f"-H 'Authorization: Bearer {token}'"
    json_header = "-H 'Content-Type: application/json'"
    return [
        f"curl -s -X POST {base}/v1/events {auth_header} {json_header} "
        f"-d '{json.dumps({'events': [event]})}'",
        f"curl -s -X PATCH {base}/v1/customers/demo-customer {auth_header} {json_header} "
        f"-d '{json.dumps(attributes)}'",
        f"curl -s {base}/v1/customers/demo-customer {auth_header}",
    ]


# --- database ------------------------------------------------------------------------------


@db_app.command("upgrade")
def db_upgrade(
    revision: Annotated[str, typer.Option(help="Target revision.")] = "head",
) -> None:
    """Apply the migrations up to REVISION (the latest by default)."""
    settings = _settings()
    migrations.upgrade(settings.database_url, revision)
    engine = make_engine(settings)
    try:
        console.print(f"database at revision {migrations.current_revision(engine)}")
    finally:
        engine.dispose()


# --- API keys ------------------------------------------------------------------------------


@apikey_app.command("create")
def apikey_create(
    name: Annotated[str, typer.Option(help="A unique name, e.g. the client's.")],
    scopes: Annotated[
        list[str], typer.Option(help="ingest, read, admin (repeat or comma-separate).")
    ],
) -> None:
    """Create a key and print it. It is shown once: only its hash is stored."""
    settings = _settings()
    try:
        parsed = auth.parse_scopes(scopes)
    except ServiceError as error:
        raise _fail(error.message) from None
    with _transaction(settings) as session:
        _, token = auth.create_key(session, name, parsed)
    err_console.print(f"created key {name!r} with scopes {', '.join(parsed)}; store it now:")
    print(token)


@apikey_app.command("list")
def apikey_list() -> None:
    """List keys (names, prefixes, scopes; never the keys)."""
    table = Table("name", "prefix", "scopes", "created", "revoked")
    with _transaction(_settings()) as session:
        for key in auth.list_keys(session):
            revoked = key.revoked_at.isoformat() if key.revoked_at else ""
            table.add_row(key.name, key.prefix, key.scopes, key.created_at.isoformat(), revoked)
    console.print(table)


@apikey_app.command("revoke")
def apikey_revoke(name: Annotated[str, typer.Argument(help="The key's name.")]) -> None:
    """Revoke a key: requests with it get 401 from now on."""
    with _transaction(_settings()) as session:
        auth.revoke(session, name)
    console.print(f"revoked {name!r}")


# --- import --------------------------------------------------------------------------------


@app.command("import-csv")
def import_csv_command(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="The CSV file.")],
    customer_col: Annotated[str, typer.Option(help="Column with the customer id.")] = "customer_id",
    time_col: Annotated[str, typer.Option(help="Column with the event time.")] = "occurred_at",
    amount_col: Annotated[str | None, typer.Option(help="Column with the order total.")] = None,
    price_col: Annotated[
        str | None, typer.Option(help="Unit price; amount = price x quantity without --amount-col.")
    ] = None,
    quantity_col: Annotated[str | None, typer.Option(help="Column with the quantity.")] = None,
    sku_col: Annotated[str | None, typer.Option(help="Column with the product SKU.")] = None,
    category_col: Annotated[str | None, typer.Option(help="Column with the category.")] = None,
    event_id_col: Annotated[
        str | None,
        typer.Option(help="Column with a unique row id; derived from the row if absent."),
    ] = None,
    type_col: Annotated[str | None, typer.Option(help="Column with the event type.")] = None,
    default_type: Annotated[
        EventType, typer.Option(help="Event type of rows without a type column.")
    ] = EventType.purchase,
    time_format: Annotated[
        str | None, typer.Option(help="strptime format, e.g. '%d/%m/%Y %H:%M'; ISO 8601 if unset.")
    ] = None,
    timezone: Annotated[str, typer.Option(help="Time zone of times without one.")] = "UTC",
    delimiter: Annotated[str, typer.Option(help="Field delimiter.")] = ",",
    encoding: Annotated[str, typer.Option(help="File encoding.")] = "utf-8-sig",
    negative_as_refund: Annotated[
        bool, typer.Option(help="Import negative amounts as refunds instead of rejecting them.")
    ] = False,
) -> None:
    """Import events from a CSV file: streamed, in bulk, idempotent on re-run."""
    settings = _settings()
    mapping = CsvMapping(
        customer=customer_col,
        time=time_col,
        amount=amount_col,
        price=price_col,
        quantity=quantity_col,
        sku=sku_col,
        category=category_col,
        event_id=event_id_col,
        type=type_col,
        time_format=time_format,
        timezone=timezone,
        default_type=default_type,
        negative_as_refund=negative_as_refund,
    )
    pii = PiiHasher(settings.pii_secret.get_secret_value(), settings.pii_attributes)
    rules = IngestRules.from_settings(settings, pii)
    with (
        _session_factory(settings) as factory,
        progress_open(file, "rb", description=f"importing {file.name}", console=err_console) as raw,
    ):
        text = io.TextIOWrapper(raw, encoding=encoding, newline="")
        summary = import_csv(text, mapping, factory, rules, delimiter=delimiter)
    console.print(
        f"rows {summary.rows}: imported {summary.imported}, duplicates {summary.duplicates}, "
        f"rejected {summary.rejected}"
    )
    for line, reason in summary.rejections:
        console.print(f"  line {line}: {reason}", highlight=False)


# --- OpenAPI -------------------------------------------------------------------------------


def openapi_document() -> str:
    from service.main import create_app

    return json.dumps(create_app(_settings()).openapi(), indent=2, sort_keys=True) + "\n"


@app.command()
def openapi(
    out: Annotated[Path, typer.Option(help="Where to write the document.")] = OPENAPI_PATH,
    check: Annotated[
        bool, typer.Option(help="Only check that OUT is current; exit 1 if not.")
    ] = False,
) -> None:
    """Write the OpenAPI document generated from the app (committed as openapi/openapi.json)."""
    document = openapi_document()
    if check:
        if not out.is_file() or out.read_text() != document:
            raise _fail(f"{out} is stale; run: clv openapi")
        console.print(f"{out} is current")
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(document)
    console.print(f"wrote {out}")


if __name__ == "__main__":
    app()
