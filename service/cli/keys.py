"""``clv apikey``: create, list and revoke API keys."""

# Beyond typer, rich and the standard library, imports go inside the commands: --help is instant.
from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from service.cli.common import console, err_console, fail, load_settings, transaction

apikey_app = typer.Typer(help="API keys.", no_args_is_help=True)


@apikey_app.command("create")
def apikey_create(
    name: Annotated[str, typer.Option(help="A unique name, e.g. the client's.")],
    scopes: Annotated[
        list[str], typer.Option(help="ingest, read, admin (repeat or comma-separate).")
    ],
) -> None:
    """Create a key and print it.

    It is shown once: only its hash is stored."""
    from service.auth import service as auth
    from service.errors import ServiceError

    settings = load_settings()
    try:
        parsed = auth.parse_scopes(scopes)
    except ServiceError as error:
        raise fail(error.message) from None
    with transaction(settings) as session:
        _, token = auth.create_key(session, name, parsed)
    err_console.print(f"created key {name!r} with scopes {', '.join(parsed)}; store it now:")
    print(token)


@apikey_app.command("list")
def apikey_list() -> None:
    """List keys (names, prefixes, scopes; never the keys)."""
    from service.auth import service as auth

    table = Table("name", "prefix", "scopes", "created", "revoked")
    with transaction(load_settings()) as session:
        for key in auth.list_keys(session):
            revoked = key.revoked_at.isoformat() if key.revoked_at else ""
            table.add_row(key.name, key.prefix, key.scopes, key.created_at.isoformat(), revoked)
    console.print(table)


@apikey_app.command("revoke")
def apikey_revoke(
    name: Annotated[str, typer.Argument(metavar="NAME", help="The key's name.")],
) -> None:
    """Revoke a key: requests with it get 401 from now on."""
    from service.auth import service as auth

    with transaction(load_settings()) as session:
        auth.revoke(session, name)
    console.print(f"revoked {name!r}")
