"""``clv events dead-letters list|retry|drop``: what an operator does with events the worker
could not apply (``service.dead_letters``)."""

# Beyond typer, rich and the standard library, imports go inside the commands: --help is instant.
from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from service.cli.common import console, fail, load_settings, transaction
from service.dead_letters.limits import MAX_LISTED

events_app = typer.Typer(help="The event log's operations.", no_args_is_help=True)
dead_letters_app = typer.Typer(
    help="Events the worker could not apply, kept with the error.", no_args_is_help=True
)
events_app.add_typer(dead_letters_app, name="dead-letters")

Seqs = Annotated[
    list[int] | None, typer.Argument(metavar="SEQ", help="Sequence numbers (see list).")
]
All = Annotated[bool, typer.Option("--all", help="Every dead letter.")]


@dead_letters_app.command("list")
def list_command(
    limit: Annotated[int, typer.Option(min=1, max=MAX_LISTED, help="At most this many.")] = 100,
) -> None:
    """The dead letters, oldest first, with the error."""
    from service.dead_letters import service

    with transaction(load_settings()) as session:
        page = service.page(session, limit)
    table = Table("seq", "event_id", "customer", "type", "failed at", "error")
    for letter in page.dead_letters:
        table.add_row(
            str(letter.seq),
            letter.event_id,
            letter.customer_id,
            letter.type,
            letter.failed_at.isoformat(timespec="seconds"),
            letter.error,
        )
    console.print(table)
    console.print(f"{page.total} dead letters in all")


@dead_letters_app.command("retry")
def retry_command(seqs: Seqs = None, every: All = False) -> None:
    """Queue them for the worker again (after fixing the cause)."""
    from service.dead_letters import service

    chosen = _chosen(seqs, every)
    with transaction(load_settings()) as session:
        done = service.retry(session, chosen)
    console.print(f"queued again: {len(done.seqs)}")


@dead_letters_app.command("drop")
def drop_command(seqs: Seqs = None, every: All = False) -> None:
    """Delete them and their events: they will never count."""
    from service.dead_letters import service

    chosen = _chosen(seqs, every)
    with transaction(load_settings()) as session:
        done = service.drop(session, chosen)
    console.print(f"dropped: {len(done.seqs)}")


def _chosen(seqs: list[int] | None, every: bool) -> list[int] | None:
    if bool(seqs) == every:
        raise fail("give sequence numbers or --all")
    return None if every else seqs
