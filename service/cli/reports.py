"""``clv report fairness`` and ``clv report btyd``: reports computed here rather than by a
worker, and stored for the API as a worker's would be."""

# Beyond typer, rich and the standard library, imports go inside the commands: --help is instant.
from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

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
from service.diagnostics.count_models import CountModel
from service.fairness.defaults import DEFAULT_EPOCHS, DEFAULT_HORIZON_DAYS

report_app = typer.Typer(help="Reports computed from the event store.", no_args_is_help=True)


@report_app.command("fairness")
def fairness_report(
    as_of: AsOf = None,
    horizon_days: Annotated[
        int, typer.Option(min=28, help="Days of spend after --as-of to judge the models on.")
    ] = DEFAULT_HORIZON_DAYS,
    epochs: Epochs = DEFAULT_EPOCHS,
    out: Annotated[Path, typer.Option(help="Folder for report.json and fairness.png.")] = Path(
        "reports/fairness"
    ),
) -> None:
    """Audit two models' fairness per group.

    Backtest at --as-of (default: the latest cut-off whose horizon is in the data) with a model
    trained with every profile attribute and one without the protected ones
    (CLV_FAIRNESS_ATTRIBUTES); audit both per group. The report is also stored, so
    GET /v1/reports/fairness serves it."""
    from service.fairness import service as fairness

    settings = load_settings()
    moment = parse_as_of(as_of) if as_of else None
    with session_factory(settings) as factory, stages("fairness") as progress:
        body, chart = fairness.compute(
            factory,
            settings,
            as_of=moment,
            horizon_days=horizon_days,
            epochs=epochs,
            progress=progress,
        )
        report_id = fairness.store(factory, body, chart)
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(body, indent=2) + "\n")
    (out / "fairness.png").write_bytes(chart)
    console.print(_groups_table(body))
    console.print(_disparities_table(body))
    console.print(
        f"{body['customers']} customers, as of {body['as_of']}, {body['horizon_days']} days; "
        f"{body['seconds']:.0f} s. Stored as report {report_id}; wrote {out}/report.json and "
        f"{out}/fairness.png"
    )


@report_app.command("btyd")
def btyd_report(
    as_of: AsOf = None,
    holdout_days: Annotated[
        int, typer.Option(min=7, max=730, help="Days before --as-of the calibration fit ends.")
    ] = 90,
    count_model: Annotated[
        CountModel, typer.Option(help="BG/NBD or Pareto/NBD.")
    ] = CountModel.bgnbd,
    out: Annotated[Path, typer.Option(help="Folder for report.json and the PNG charts.")] = Path(
        "reports/btyd"
    ),
) -> None:
    """The BTYD diagnostic charts analysts know from lifetimes.

    Fit the purchase-count model on the events up to --as-of minus --holdout-days and compare
    its expected holdout purchases with the actual ones by calibration frequency; fit it again
    up to --as-of (default: the latest event) for the frequency-recency and probability-alive
    matrices. Writes report.json and one PNG per chart; the report is also stored, so
    GET /v1/reports/btyd and /v1/reports/btyd.png serve it."""
    from typing import get_args

    from service.diagnostics import service as diagnostics
    from service.diagnostics.charts import btyd_png
    from service.diagnostics.schemas import BtydReportRequest, Chart

    settings = load_settings()
    request = BtydReportRequest.model_validate(
        {
            "as_of": parse_as_of(as_of) if as_of else None,
            "holdout_days": holdout_days,
            "count_model": count_model,
        }
    )
    with session_factory(settings) as factory, stages("btyd") as progress:
        body = diagnostics.compute(factory, request, progress)
        report_id = diagnostics.store(factory, body)
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(body, indent=2) + "\n")
    for chart in get_args(Chart):
        (out / f"{chart}.png").write_bytes(btyd_png(body, chart))
    table = Table("calibration frequency", "customers", "predicted", "actual", title="Holdout")
    for row in body["calibration"]:
        table.add_row(
            row["frequency"],
            str(row["customers"]),
            f"{row['predicted']:.3f}",
            f"{row['actual']:.3f}",
        )
    console.print(table)
    console.print(
        f"{body['count_model']} on {body['buyers']} buyers as of {body['as_of']}; holdout "
        f"{body['holdout_days']} days; {body['seconds']:.1f} s. Stored as report {report_id}; "
        f"wrote {out}/report.json and {', '.join(f'{c}.png' for c in get_args(Chart))}"
    )


def _figure(value: float | None, spec: str = ".2f") -> str:
    return "n/a" if value is None else format(value, spec)


def _groups_table(body: dict[str, Any]) -> Table:
    from service.fairness.service import MODELS

    with_, without = MODELS
    table = Table(
        "attribute",
        "group",
        "count",
        "mean actual",
        "mean predicted\nwith / without",
        "MAE\nwith / without",
        "calibration\nwith / without",
        "top-decile share\nwith / without",
        title="Per group (with and without the protected attributes)",
    )
    for attribute in body["attributes"]:
        pairs = zip(
            body[with_]["attributes"][attribute]["groups"],
            body[without]["attributes"][attribute]["groups"],
            strict=True,
        )
        for w, wo in pairs:
            table.add_row(
                attribute,
                w["group"],
                str(w["count"]),
                _figure(w["mean_actual"]),
                f"{_figure(w['mean_predicted'])} / {_figure(wo['mean_predicted'])}",
                f"{_figure(w['mae'])} / {_figure(wo['mae'])}",
                f"{_figure(w['calibration_ratio'], '.3f')} / "
                f"{_figure(wo['calibration_ratio'], '.3f')}",
                f"{_figure(w['top_decile_share'], '.1%')} / "
                f"{_figure(wo['top_decile_share'], '.1%')}",
            )
    return table


def _disparity(found: dict[str, Any], kind: str) -> str:
    interval = found[f"{kind}_interval"]
    spread = f" [{interval[0]:.3g}, {interval[1]:.3g}]" if interval else ""
    return f"{_figure(found[kind], '.3g')}{spread}"


def _disparities_table(body: dict[str, Any]) -> Table:
    from service.fairness.audit import METRICS
    from service.fairness.service import MODELS

    with_, without = MODELS
    table = Table(
        "attribute",
        "metric",
        "difference with [95%]",
        "difference without [95%]",
        "ratio with [95%]",
        "ratio without [95%]",
        title="Disparities between groups (max - min, min / max; bootstrap intervals)",
    )
    for attribute in body["attributes"]:
        for metric in METRICS:
            w = body[with_]["attributes"][attribute]["disparities"][metric]
            wo = body[without]["attributes"][attribute]["disparities"][metric]
            table.add_row(
                attribute,
                metric,
                _disparity(w, "difference"),
                _disparity(wo, "difference"),
                _disparity(w, "ratio"),
                _disparity(wo, "ratio"),
            )
    for name in MODELS:
        accuracy = body[name]["accuracy"]
        table.add_row(
            "accuracy",
            name.replace("_", " "),
            f"Gini {_figure(accuracy['normalized_gini'], '.3f')}",
            f"MAE {_figure(accuracy['mae'])}",
            f"decile MAPE {_figure(accuracy['decile_mape'], '.3f')}",
            f"aggregate error {_figure(accuracy['aggregate_revenue_error'], '+.1%')}",
        )
    return table
