"""``clv learning``: run the learning loop, and read its decisions and the accuracy of matured
predictions."""

# Beyond typer, rich and the standard library, imports go inside the commands: --help is instant.
from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from service.cli.common import (
    AsOf,
    console,
    load_settings,
    parse_as_of,
    session_factory,
    stages,
    transaction,
)

learning_app = typer.Typer(
    help="Continuous learning: challengers against the champion.\n\n"
    "Each challenger is judged against the champion on a time-later holdout.",
    no_args_is_help=True,
)


def _figure(metrics: dict[str, Any] | None, key: str) -> str:
    return f"{metrics[key]:.3f}" if metrics and key in metrics else "-"


@learning_app.command("run")
def run(
    as_of: AsOf = None,
    mode: Annotated[
        str | None, typer.Option(help="warm or retrain (default: CLV_LEARNING_MODE).")
    ] = None,
    challenger: Annotated[
        str | None, typer.Option(help="Judge this registered version instead of training one.")
    ] = None,
) -> None:
    """Train a challenger and promote it if it proves better.

    It learns from the newest data (or --challenger names one) and is judged against the
    champion on the holdout."""
    from service.learning import service as learning
    from service.learning.schemas import Trigger

    settings = load_settings()
    if mode not in (None, "warm", "retrain"):
        raise typer.BadParameter("--mode must be warm or retrain")
    with session_factory(settings) as factory, stages("learning") as progress:
        decision = learning.learn(
            factory,
            settings,
            trigger=Trigger.demand,
            actor="cli",
            as_of=parse_as_of(as_of),
            mode=mode,
            challenger=challenger,
            progress=progress,
        )
    console.print(
        f"{decision.outcome}: challenger {decision.challenger_version} against champion "
        f"{decision.champion_version}"
    )
    for reason in decision.reasons:
        console.print(f"  - {reason}")


@learning_app.command("decisions")
def decisions(
    limit: Annotated[int, typer.Option(min=1, help="How many, newest first.")] = 20,
) -> None:
    """Every learning decision with both models' holdout metrics."""
    from service.learning import service as learning

    table = Table(
        "id", "decided", "trigger", "outcome", "challenger", "champion", "Gini", "MAPE", "agg."
    )
    with transaction(load_settings()) as session:
        for d in learning.decisions(session, limit):
            pairs = [
                f"{_figure(d.challenger_metrics, key)} / {_figure(d.champion_metrics, key)}"
                for key in ("normalized_gini", "decile_mape", "aggregate_revenue_error")
            ]
            table.add_row(
                str(d.id),
                d.decided_at.strftime("%Y-%m-%d %H:%M"),
                d.trigger,
                d.outcome,
                d.challenger_version or "-",
                d.champion_version or "-",
                *pairs,
            )
    console.print(table)
    console.print("metrics: challenger / champion on the holdout")


@learning_app.command("accuracy")
def accuracy(
    refresh: Annotated[bool, typer.Option(help="Recompute now instead of the stored.")] = False,
) -> None:
    """Matured predictions against actual spend, per version.

    Each model version's matured predictions against what its customers actually spent."""
    from service.learning import matured

    settings = load_settings()
    with session_factory(settings) as factory:
        if refresh:
            report = matured.refresh_accuracy(factory, settings)
        else:
            with factory() as session:
                report = matured.stored_accuracy(session)
    table = Table("version", "matured", "as of", "Gini", "BTYD Gini", "decile MAPE", "agg. error")
    for v in report.versions:
        span = (
            f"{v.as_of_from:%Y-%m-%d}..{v.as_of_to:%Y-%m-%d}"
            if v.as_of_from and v.as_of_to
            else "-"
        )
        table.add_row(
            v.version,
            str(v.matured),
            span,
            _figure(v.metrics, "normalized_gini"),
            _figure(v.btyd, "normalized_gini"),
            _figure(v.metrics, "decile_mape"),
            _figure(v.metrics, "aggregate_revenue_error"),
        )
    console.print(table)
