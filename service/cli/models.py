"""``clv train``, ``clv evaluate``, ``clv score`` and ``clv models``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from service.cli.common import (
    AsOf,
    Epochs,
    console,
    err_console,
    load_settings,
    parse_as_of,
    session_factory,
    stages,
    transaction,
)
from service.ml.artifacts import device_for
from service.model_versions import service as registry
from service.model_versions.store import load_version
from service.training.backtest import backtest
from service.training.runner import train_version
from service.training.scoring import score_to_csv

app = typer.Typer()
models_app = typer.Typer(help="Registered model versions and their aliases.", no_args_is_help=True)

Horizon = Annotated[int, typer.Option(min=1, help="Days of future spend to predict.")]
Architecture = Annotated[str, typer.Option(help="A registered architecture.")]


@app.command()
def train(
    horizon_days: Horizon,
    as_of: AsOf = None,
    architecture: Architecture = "gru_ziln",
    epochs: Epochs = 25,
    without_protected_attributes: Annotated[
        bool,
        typer.Option(
            "--without-protected-attributes",
            help="Leave the protected profile attributes (CLV_FAIRNESS_ATTRIBUTES) out of the "
            "model's features.",
        ),
    ] = False,
) -> None:
    """Train on the events up to --as-of and register the version (champion if it is the first,
    challenger otherwise)."""
    settings = load_settings()
    moment = parse_as_of(as_of)
    with session_factory(settings) as factory, stages("training") as progress:
        version = train_version(
            factory,
            settings,
            as_of=moment,
            horizon_days=horizon_days,
            architecture=architecture,
            epochs=epochs,
            without_protected_attributes=without_protected_attributes,
            actor="cli",
            progress=progress,
        )
    deep, btyd = version.metrics["deep"], version.metrics["btyd"]
    console.print(f"registered {version.version} ({', '.join(version.aliases)})")
    console.print(
        f"validation: normalised Gini {deep['normalized_gini']:.3f} "
        f"(BTYD {btyd['normalized_gini']:.3f}), decile MAPE {deep['decile_mape']:.3f} "
        f"(BTYD {btyd['decile_mape']:.3f})"
    )


@app.command()
def evaluate(
    horizon_days: Horizon,
    as_of: AsOf = None,
    out: Annotated[Path, typer.Option(help="Folder for report.json and the charts.")] = Path(
        "reports/backtest"
    ),
    shop: Annotated[
        Path | None, typer.Option(help="A simulated shop's folder: adds the ground-truth oracle.")
    ] = None,
    architecture: Architecture = "gru_ziln",
    epochs: Epochs = 25,
) -> None:
    """Backtest: train on the events up to --as-of, score everyone there, compare with their
    spend in the next --horizon-days, against the BTYD baseline (and the oracle)."""
    settings = load_settings()
    moment = parse_as_of(as_of)
    with session_factory(settings) as factory, stages("backtest") as progress:
        report = backtest(
            factory,
            settings,
            as_of=moment,
            horizon_days=horizon_days,
            out=out,
            shop=shop,
            architecture=architecture,
            epochs=epochs,
            progress=progress,
        )
    table = Table(
        "population", "model", "norm. Gini", "decile MAPE", "aggregate error", "p10-p90 cover"
    )
    for population, models in report["populations"].items():
        for name, m in models.items():
            coverage = m.get("p10_p90_coverage")
            covered = f"{coverage:.1%}" if coverage is not None else ""
            gini, mape = f"{m['normalized_gini']:.3f}", f"{m['decile_mape']:.3f}"
            error = f"{m['aggregate_revenue_error']:+.1%}"
            table.add_row(population.replace("_", " "), name, gini, mape, error, covered)
    console.print(table)
    console.print(f"wrote {out}/report.json and charts")


@app.command()
def score(
    horizon_days: Horizon,
    out: Annotated[Path, typer.Option(help="The CSV file to write.")],
    as_of: AsOf = None,
    version: Annotated[str, typer.Option(help="A version id or alias.")] = "champion",
) -> None:
    """Score every customer with an event by --as-of and write a CSV (streamed by chunks)."""
    settings = load_settings()
    moment = parse_as_of(as_of)
    with session_factory(settings) as factory:
        with factory() as session:
            version_id, model = load_version(
                session, settings.model_dir, version, device_for(settings.device)
            )
        with err_console.status(f"scoring with {version_id}"):
            written = score_to_csv(
                factory,
                settings,
                model,
                version_id,
                as_of=moment,
                horizon_days=horizon_days,
                out=out,
            )
    console.print(f"wrote {written} scores to {out}")


@models_app.command("list")
def models_list() -> None:
    """Registered versions, newest first, with their aliases and validation metrics."""
    table = Table("version", "aliases", "horizon", "data to", "Gini", "BTYD Gini", "by")
    with transaction(load_settings()) as session:
        for v in registry.list_versions(session):
            deep, btyd = v.metrics.get("deep", {}), v.metrics.get("btyd", {})
            table.add_row(
                v.version,
                ", ".join(v.aliases),
                str(v.horizon_days),
                v.data_to.date().isoformat(),
                f"{deep.get('normalized_gini', float('nan')):.3f}",
                f"{btyd.get('normalized_gini', float('nan')):.3f}",
                v.created_by,
            )
    console.print(table)


@models_app.command("promote")
def models_promote(
    version: Annotated[str, typer.Argument(help="The version id.")],
    alias: Annotated[str, typer.Option(help="champion or challenger.")] = "champion",
) -> None:
    """Point an alias at a version (the artifact is loaded and verified first)."""
    settings = load_settings()
    with transaction(settings) as session:
        change = registry.promote(session, settings.model_dir, version, alias, actor="cli")
    console.print(f"{change.alias}: {change.previous_version} -> {change.version}")


@models_app.command("rollback")
def models_rollback(
    alias: Annotated[str, typer.Option(help="champion or challenger.")] = "champion",
    to: Annotated[
        str | None, typer.Option(help="Any version the alias had before (default: the last).")
    ] = None,
) -> None:
    """Point an alias back at an earlier version (its artifact is verified first)."""
    settings = load_settings()
    with transaction(settings) as session:
        change = registry.rollback(session, settings.model_dir, alias, "cli", to)
    console.print(f"{change.alias}: {change.previous_version} -> {change.version}")


@models_app.command("history")
def models_history() -> None:
    """The promotion log, newest first."""
    table = Table("at", "alias", "action", "version", "previous", "by")
    with transaction(load_settings()) as session:
        for e in registry.history(session):
            table.add_row(
                e.at.isoformat(timespec="seconds"),
                e.alias,
                e.action,
                e.version,
                e.previous_version or "",
                e.actor,
            )
    console.print(table)
