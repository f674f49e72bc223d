"""``clv serve`` and ``clv demo``."""

from __future__ import annotations

import json
import logging.config
from datetime import UTC, datetime
from functools import partial
from typing import Annotated

import typer
import uvicorn

from service.auth import service as auth
from service.cli.common import console, load_settings, session_factory, transaction
from service.db import migrations
from service.jobs.runner import JobRunner
from service.jobs.worker import Worker
from service.logs import logging_config

app = typer.Typer()


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind; 0.0.0.0 for all.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
) -> None:
    """Start the HTTP API (uvicorn). The database must be migrated (clv db upgrade)."""
    settings = load_settings()
    with session_factory(settings):
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
def worker() -> None:
    """Apply newly stored events to the customer portrait and run queued jobs (training),
    continuously: run it beside API processes started with CLV_WORKER=off; several workers may
    share a PostgreSQL database."""
    settings = load_settings()
    logging.config.dictConfig(logging_config(settings.log_level))
    with session_factory(settings) as factory:
        loop = Worker(
            factory, poll_seconds=settings.worker_poll_seconds, batch=settings.worker_batch
        )
        jobs = JobRunner(factory, settings)
        jobs.start()
        console.print("worker running (events and jobs); Ctrl-C stops it")
        try:
            loop.run()
        except KeyboardInterrupt:
            console.print("worker stopped")
        finally:
            jobs.stop()


@app.command()
def demo(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
) -> None:
    """Migrate the database (SQLite by default), create an API key and serve, printing how to
    call the API."""
    settings = load_settings()
    migrations.upgrade(settings.database_url)
    with transaction(settings) as session:
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
