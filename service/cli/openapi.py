"""``clv openapi``: the committed OpenAPI document."""

# Beyond typer, rich and the standard library, imports go inside the commands: --help is instant.
from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from service.cli.common import console, fail, load_settings

OPENAPI_PATH = Path("openapi/openapi.json")
app = typer.Typer()


def openapi_document() -> str:
    from service.main import create_app

    return json.dumps(create_app(load_settings()).openapi(), indent=2, sort_keys=True) + "\n"


@app.command()
def openapi(
    out: Annotated[Path, typer.Option(help="Where to write the document.")] = OPENAPI_PATH,
    check: Annotated[
        bool, typer.Option(help="Only check that OUT is current; exit 1 if not.")
    ] = False,
) -> None:
    """Write the OpenAPI document generated from the app.

    It is committed as openapi/openapi.json; --check compares instead of writing."""
    document = openapi_document()
    if check:
        if not out.is_file() or out.read_text() != document:
            raise fail(f"{out} is stale; run: clv openapi")
        console.print(f"{out} is current")
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(document)
    console.print(f"wrote {out}")
