"""Getting data in: ``clv simulate``, ``clv import-events``, ``clv import-csv``, and
``clv portrait rebuild``."""

# Beyond typer, rich and the standard library, imports go inside the commands: --help is instant.
from __future__ import annotations

import codecs
import io
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)
from rich.progress import open as progress_open

from service.cli.common import (
    console,
    err_console,
    fail,
    load_settings,
    session_factory,
    transaction,
)
from service.events.types import EventType

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

    from service.events.imports import ImportSummary

app = typer.Typer()
portrait_app = typer.Typer(
    help="The customer portrait (activity aggregates).", no_args_is_help=True
)


@app.command("import-csv")
def import_csv_command(
    file: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, metavar="FILE", help="The CSV file.")
    ],
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
        EventType,
        typer.Option(
            metavar="<type>",
            help=f"Event type of rows without a type column: {', '.join(EventType)}.",
        ),
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
    order_col: Annotated[
        str | None,
        typer.Option(
            help="Column with the order id: the rows of one order and customer (near each "
            "other, as exports sort them) become one event; negative quantities: a refund."
        ),
    ] = None,
    name_col: Annotated[
        str | None, typer.Option(help="Column with the product name (item name).")
    ] = None,
    cancel_prefix: Annotated[
        str | None,
        typer.Option(help="With --order-col: order ids starting with this are refunds, e.g. C."),
    ] = None,
) -> None:
    """Import events from a CSV file.

    Streamed, in bulk, idempotent on re-run."""
    from service.events.csv_import import CsvMapping, import_csv
    from service.events.service import IngestRules
    from service.privacy import PiiHasher

    try:
        codecs.lookup(encoding)
    except LookupError:
        raise fail(f"unknown --encoding {encoding!r}") from None
    settings = load_settings()
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
        order=order_col,
        name=name_col,
        cancel_prefix=cancel_prefix,
    )
    pii = PiiHasher.from_settings(settings)
    rules = IngestRules.from_settings(settings, pii)
    with (
        session_factory(settings) as factory,
        progress_open(file, "rb", description=f"importing {file.name}", console=err_console) as raw,
    ):
        text = io.TextIOWrapper(raw, encoding=encoding, newline="")
        summary = import_csv(text, mapping, factory, rules, delimiter=delimiter)
        _apply_to_portrait(factory)
    if order_col:
        console.print(f"{summary.lines} lines read as {summary.rows} orders")
    unit = "orders" if order_col else "rows"
    _print_import(summary, unit)
    _refuse_if_all_rejected(summary, unit)


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
    )


@app.command()
def simulate(
    out: Annotated[Path, typer.Option(help="Folder to write the shop to.")] = Path("data/shop"),
    customers: Annotated[int, typer.Option(min=1, help="Customers acquired.")] = 10_000,
    days: Annotated[int, typer.Option(min=30, help="Days observed.")] = 730,
    start: Annotated[str, typer.Option(help="First day (YYYY-MM-DD).")] = "2024-01-01",
    horizon_days: Annotated[
        int, typer.Option(min=1, help="Length of the future window the truth covers.")
    ] = 365,
    seed: Annotated[int, typer.Option(help="Same seed, same shop.")] = 42,
    shift_day: Annotated[
        int | None, typer.Option(help="From this day on, one channel's customers buy less.")
    ] = None,
    shift_channel: Annotated[str, typer.Option(help="The channel that shifts.")] = "paid_social",
    shift_factor: Annotated[float, typer.Option(help="Its purchase-rate multiplier.")] = 0.3,
    with_future: Annotated[
        bool, typer.Option(help="Also write the future window's events (future.jsonl).")
    ] = False,
    seasons: Annotated[
        bool,
        typer.Option(
            help="Weekly and yearly cycles and promotion days; --no-seasons: every day alike, "
            "so a shift in behaviour is not mixed up with the time of year."
        ),
    ] = True,
) -> None:
    """Simulate a shop whose future spend is known.

    It writes events, profiles, a catalogue and the ground truth."""
    from service.simulator.config import Shift, ShopConfig
    from service.simulator.files import write_shop
    from service.simulator.population import CHANNELS

    if shift_day is not None and shift_channel not in CHANNELS:
        raise fail(f"unknown channel {shift_channel!r}; known: {', '.join(CHANNELS)}")
    try:
        first_day = date.fromisoformat(start)
    except ValueError:
        raise fail(f"--start {start!r} is not a date (YYYY-MM-DD)") from None
    config = ShopConfig(
        customers=customers,
        days=days,
        start=first_day,
        horizon_days=horizon_days,
        seed=seed,
        currency=load_settings().currency,
        shift=Shift(shift_day, shift_channel, shift_factor) if shift_day is not None else None,
        seasons=seasons,
    )
    with _progress() as progress:
        task = progress.add_task("simulating customers", total=customers)
        summary = write_shop(
            config, out, with_future=with_future, on_chunk=lambda n: progress.advance(task, n)
        )
    counts = summary["counts"]
    console.print(
        f"wrote {out}: {counts['customers']} customers, {counts['events']} events, "
        f"{counts['profiles']} profile updates, truth for {config.horizon_days} days ahead"
    )


@app.command("import-events")
def import_events(
    path: Annotated[
        Path,
        typer.Argument(
            exists=True, metavar="PATH", help="A shop folder (clv simulate) or an events .jsonl."
        ),
    ],
    url: Annotated[
        str | None, typer.Option(help="Send to a running service instead of the database.")
    ] = None,
    api_key: Annotated[
        str | None, typer.Option(envvar="CLV_API_KEY", help="Key for --url (scope ingest).")
    ] = None,
) -> None:
    """Load a shop folder's events, profiles and catalogue.

    Or the events of one .jsonl file; streamed, idempotent on re-run."""
    from service.customers.service import ProfilePolicy
    from service.errors import ServiceError
    from service.events.service import IngestRules
    from service.privacy import PiiHasher
    from service.remote import RemoteService
    from service.shop_files import ShopFiles, load_folder, send_folder

    files = ShopFiles.at(path)
    if not files.events.exists():
        raise fail(f"{files.events} not found")
    sizes = {"events": _count_lines(files.events)}
    if files.profiles is not None:
        sizes["profiles"] = _count_lines(files.profiles)
    with _progress() as progress:
        tasks = {part: progress.add_task(part, total=n) for part, n in sizes.items() if n}

        def advance(part: str, done: int) -> None:
            progress.advance(tasks[part], done)

        if url:
            if not api_key:
                raise fail("--url needs --api-key (or CLV_API_KEY)")
            try:
                summary = send_folder(files, RemoteService(url, api_key), advance)
            except ServiceError as error:
                raise fail(error.message) from None
        else:
            settings = load_settings()
            pii = PiiHasher.from_settings(settings)
            policy = ProfilePolicy.from_settings(settings, pii)
            with session_factory(settings) as factory:
                rules = IngestRules.from_settings(settings, pii)
                summary = load_folder(files, factory, rules, policy, advance)
                _apply_to_portrait(factory)
    _print_import(summary.events)
    console.print(f"profiles: {summary.profiles} updates; catalogue: {summary.catalogue} products")
    for line, reason in summary.profiles_rejected:
        console.print(f"  profiles line {line}: {reason}", highlight=False)
    _refuse_if_all_rejected(summary.events)


def _count_lines(path: Path) -> int:
    with path.open("rb") as handle:
        return sum(1 for _ in handle)


def _apply_to_portrait(factory: sessionmaker[Session]) -> None:
    """Imports queue their events like the API does; apply them here rather than wait for a
    worker, so the portrait is current (and the database's statistics fresh) when the command
    returns."""
    from service.events.worker import settle_import

    with err_console.status("applying the events to the customer portrait"):
        settle_import(factory)


def _print_import(summary: ImportSummary, unit: str = "rows") -> None:
    """The counts, then the first rejections by line (an order's: its first row's line)."""
    console.print(
        f"{unit} {summary.rows}: imported {summary.imported}, duplicates {summary.duplicates}, "
        f"rejected {summary.rejected}"
    )
    for line, reason in summary.rejections:
        console.print(f"  line {line}: {reason}", highlight=False)


def _refuse_if_all_rejected(summary: ImportSummary, unit: str = "rows") -> None:
    """Exit 1 when every one was rejected: a mapping or a file gone wrong, and a script must
    not go on as if the data were in."""
    if summary.rejected and summary.rejected == summary.rows:
        raise fail(f"every one of the {summary.rows} {unit} was rejected; nothing was imported")


@portrait_app.command("rebuild")
def portrait_rebuild() -> None:
    """Recompute the portrait aggregates from all stored events.

    Stop ingestion meanwhile."""
    from service.portrait import service as portrait

    with transaction(load_settings()) as session, _progress() as progress:
        task = progress.add_task("events", total=None)
        events = portrait.rebuild(session, lambda n: progress.advance(task, n))
    console.print(f"rebuilt the portrait from {events} events")
