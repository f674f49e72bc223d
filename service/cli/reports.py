"""``clv report fairness``: the fairness audit, computed here rather than by a worker."""

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
