"""``clv forecast``: the shop's revenue and orders over time, computed here rather than by a
worker and stored; ``--backtest`` measures the method on the shop's own past."""

# Beyond typer, rich and the standard library, imports go inside the commands: --help is instant.
from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from rich.table import Table

from service.cli.common import (
    AsOf,
    Epochs,
    console,
    load_settings,
    parse_as_of,
    session_factory,
    stages,
)

app = typer.Typer()


@app.command()
def forecast(
    horizon_days: Annotated[
        int,
        typer.Option(
            min=1, max=730, help="Days to forecast (past the champion's horizon: extrapolated)."
        ),
    ] = 182,
    granularity: Annotated[
        str, typer.Option(help="day, week (Monday to Sunday) or month.")
    ] = "week",
    by_category: Annotated[
        bool, typer.Option("--by-category", help="Also each product category's revenue and units.")
    ] = False,
    backtest: Annotated[
        bool,
        typer.Option(
            "--backtest",
            help="Instead: train at --as-of, forecast --weeks weeks and compare with what "
            "happened, beside a seasonal-naive baseline.",
        ),
    ] = False,
    as_of: AsOf = None,
    weeks: Annotated[int, typer.Option(min=1, max=52, help="Weeks a backtest compares.")] = 13,
    epochs: Epochs = 10,
    out: Annotated[Path, typer.Option(help="Folder for the JSON and the chart.")] = Path(
        "reports/forecast"
    ),
) -> None:
    """Forecast the shop's revenue and orders, with 80% intervals.

    Existing customers bottom up from their stored scores along the champion's BTYD curves;
    customers not acquired yet from an ETS model of weekly first orders. Stored, so
    GET /v1/forecasts/{id} serves it. With --backtest: cut the history at --as-of (default: the
    latest cut-off with --weeks weeks of events after it), train there, forecast and report
    weekly MAPE and interval coverage against the actual weeks."""
    if granularity not in ("day", "week", "month"):
        raise typer.BadParameter("day, week or month", param_hint="--granularity")
    out.mkdir(parents=True, exist_ok=True)
    if backtest:
        _backtest(as_of, weeks, epochs, out)
        return
    from service.forecasts import service as forecasts
    from service.forecasts.schemas import ForecastRequest

    settings = load_settings()
    chosen: Literal["day", "week", "month"] = granularity  # type: ignore[assignment]
    request = ForecastRequest(
        horizon_days=horizon_days, granularity=chosen, by="category" if by_category else None
    )
    with session_factory(settings) as factory, stages("forecast") as progress:
        body, chart = forecasts.compute(factory, settings, request, progress)
        forecast_id = forecasts.store(factory, body, chart)
    (out / "forecast.json").write_text(json.dumps(body, indent=2) + "\n")
    (out / "forecast.png").write_bytes(chart)
    console.print(_periods_table(body))
    total = body["total"]
    console.print(
        f"{body['horizon_days']} days from {body['first_day']}: revenue "
        f"{_band(total['revenue'])}, orders {_band(total['orders'], '.0f')} "
        f"({body['customers']['existing']} existing customers). Stored as forecast "
        f"{forecast_id}; wrote {out}/forecast.json and {out}/forecast.png"
    )


def _backtest(as_of: str | None, weeks: int, epochs: int, out: Path) -> None:
    from datetime import UTC, datetime

    from service.forecasts.backtest import backtest
    from service.ml.artifacts import device_for
    from service.ml.training import TrainConfig
    from service.training import data

    settings = load_settings()
    days = 7 * weeks
    with session_factory(settings) as factory, stages("forecast backtest") as progress:
        with factory() as session:
            log = data.event_log(session, datetime.now(UTC))
            profiles, sources = data.profiles(session, settings)
        last = datetime.fromtimestamp(int(log.events["seconds"].max()), UTC)
        moment = parse_as_of(as_of) if as_of else last - timedelta(days=days)
        config = TrainConfig(days, epochs=epochs, device=device_for(settings.device))
        report = backtest(log, profiles, sources, moment, weeks, config, progress=progress)
    (out / "backtest.json").write_text(json.dumps(report, indent=2) + "\n")
    console.print(_backtest_table(report))
    for measure, m in report["metrics"].items():
        console.print(
            f"{measure}: weekly MAPE {_pct(m['mape'])} (baseline {_pct(m['baseline_mape'])}), "
            f"80% interval coverage {_pct(m['coverage_80'])}, total error "
            f"{_pct(m['total_error'], '+.1%')} (baseline {_pct(m['baseline_total_error'], '+.1%')})"
        )
    console.print(
        f"cut at {report['as_of']}, {report['customers']} customers with an order, served "
        f"{report['served']}; baseline: {report['baseline']}; {report['seconds']:.0f} s. Wrote "
        f"{out}/backtest.json"
    )


def _band(band: dict[str, float], spec: str = ",.0f") -> str:
    return f"{band['expected']:{spec}} [{band['p10']:{spec}}, {band['p90']:{spec}}]"


def _pct(value: float | None, spec: str = ".1%") -> str:
    return "n/a" if value is None else format(value, spec)


def _periods_table(body: dict[str, Any]) -> Table:
    table = Table(
        "period",
        "revenue [80%]",
        "existing",
        "new",
        "orders [80%]",
        title=f"Forecast per {body['granularity']}",
    )
    for p in body["periods"]:
        label = p["start"] + (" *" if p["extrapolated"] else "")
        table.add_row(
            label,
            _band(p["revenue"]),
            f"{p['existing_customers']['revenue']['expected']:,.0f}",
            f"{p['new_customers']['revenue']['expected']:,.0f}",
            _band(p["orders"], ".0f"),
        )
    return table


def _backtest_table(report: dict[str, Any]) -> Table:
    table = Table(
        "week",
        "revenue actual",
        "forecast [80%]",
        "baseline",
        "orders actual",
        "forecast [80%]",
        "baseline",
        title="Forecast backtest per week",
    )
    for row in report["rows"]:
        revenue, orders = row["revenue"], row["orders"]
        table.add_row(
            row["start"],
            f"{revenue['actual']:,.0f}",
            _band(revenue),
            f"{revenue['baseline']:,.0f}",
            f"{orders['actual']:.0f}",
            _band(orders, ".0f"),
            f"{orders['baseline']:.0f}",
        )
    return table
