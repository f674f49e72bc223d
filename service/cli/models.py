"""``clv train``, ``clv evaluate``, ``clv score`` and ``clv models``."""

# Beyond typer, rich and the standard library, imports go inside the commands: --help is instant.
from __future__ import annotations

from contextlib import nullcontext
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from service.cli.common import (
    AsOf,
    Epochs,
    console,
    err_console,
    fail,
    load_settings,
    parse_as_of,
    session_factory,
    stages,
    transaction,
)

if TYPE_CHECKING:
    from service.config import Settings
    from service.model_versions.schemas import ModelVersionRead

app = typer.Typer()
models_app = typer.Typer(help="Registered model versions and their aliases.", no_args_is_help=True)

Horizon = Annotated[int, typer.Option(min=1, help="Days of future spend to predict.")]
Architecture = Annotated[
    str,
    typer.Option(
        help="A registered architecture: gru_ziln, lstm_ziln, transformer_ziln or mlp_ziln."
    ),
]


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
            "model's features, whatever CLV_TRAIN_WITH_PROTECTED_ATTRIBUTES says (they are left "
            "out by default).",
        ),
    ] = False,
    with_protected_attributes: Annotated[
        bool,
        typer.Option(
            "--with-protected-attributes",
            help="Opt in: train on the protected profile attributes too, whatever "
            "CLV_TRAIN_WITH_PROTECTED_ATTRIBUTES says.",
        ),
    ] = False,
    nproc: Annotated[
        int,
        typer.Option(
            min=1,
            help="Train as this many processes (PyTorch DDP through torchrun: gloo on the CPU, "
            "NCCL on CUDA), each reading only its shard of the customers; needs PostgreSQL.",
        ),
    ] = 1,
) -> None:
    """Train a model and register the version.

    It learns from the events up to --as-of; the version is the champion if it is the first, a
    challenger otherwise. The protected attributes are left out unless
    --with-protected-attributes or CLV_TRAIN_WITH_PROTECTED_ATTRIBUTES=true asks for them."""
    from service.errors import InvalidRequestError
    from service.ml import collective
    from service.training import protected
    from service.training.runner import TrainingOptions, train_as_rank, train_version

    _check_architecture(architecture)
    settings = load_settings()
    moment = parse_as_of(as_of)
    try:
        asked = protected.requested(
            with_protected=with_protected_attributes, without_protected=without_protected_attributes
        )
    except InvalidRequestError as error:
        raise fail(error.message) from None
    ranked = collective.launched()
    if nproc > 1:
        if ranked is not None:
            raise fail("--nproc starts torchrun itself: leave it out of a torchrun command")
        _launch_ranks(settings, nproc, horizon_days, moment, architecture, epochs, asked)
    training: TrainingOptions = {
        "as_of": moment,
        "horizon_days": horizon_days,
        "architecture": architecture,
        "epochs": epochs,
        "with_protected_attributes": asked,
    }
    leader = ranked is None or ranked[0] == 0  # the one rank that reports
    bar = stages("training") if leader else nullcontext(None)
    with session_factory(settings) as factory, bar as progress:
        training["progress"] = progress
        version: ModelVersionRead | None
        if ranked is None:
            version = train_version(factory, settings, actor="cli", **training)
        else:
            version = train_as_rank(factory, settings, ranked, actor="cli", **training)
    if ranked is not None:
        _peak_memory(ranked)
    if version is None:  # a rank other than 0: rank 0 registers the model and reports
        return
    console.print(f"registered {version.version} ({', '.join(version.aliases)})")
    console.print(_candidates_table(version.metrics))
    for name, season in version.metrics.get("seasons", {}).items():
        if season:
            console.print(
                f"{name}: a yearly season, purchases peaking on day {season['peak_day_of_year']} "
                f"of the year at {season['amplitude']:.0%} above the year's average"
            )
    if omitted := version.metrics.get("omitted_feature_groups"):
        console.print("left out: " + "; ".join(f"{g} ({why})" for g, why in omitted.items()))


def _launch_ranks(
    settings: Settings,
    processes: int,
    horizon_days: int,
    moment: datetime,
    architecture: str,
    epochs: int,
    with_protected: bool | None,
) -> None:
    """Run this training as ``processes`` ranks under ``torchrun``, then exit (``--as-of``
    fixed here, so every rank trains on the same data)."""
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError

    from service.training.runner import run_ranks

    if settings.is_sqlite:
        raise fail(
            "--nproc needs PostgreSQL (CLV_DATABASE_URL=postgresql+psycopg://...): each rank "
            "reads its shard of the customers there; SQLite is one process's database"
        )
    arguments = [
        f"--horizon-days={horizon_days}",
        f"--as-of={moment.isoformat()}",
        f"--architecture={architecture}",
        f"--epochs={epochs}",
    ]
    if with_protected is not None:
        arguments.append(
            "--with-protected-attributes" if with_protected else "--without-protected-attributes"
        )
    try:
        run_ranks(processes, arguments)
    except ChildFailedError as error:
        failed = ", ".join(str(rank) for rank in sorted(error.failures))
        raise fail(
            f"training as {processes} processes failed (rank {failed}); their errors are above"
        ) from None
    raise typer.Exit(0)


def _peak_memory(ranked: tuple[int, int, int]) -> None:
    """Each rank's own peak resident memory: what ``--nproc`` bounds (bench/train.py reads it)."""
    import resource

    rank, world, _ = ranked
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    err_console.print(f"rank {rank} of {world}: peak memory {peak:,.0f} MiB")


def _check_architecture(architecture: str) -> None:
    """Refuse an unregistered architecture in one line before reading any data (training
    would otherwise fail with a traceback after minutes of work)."""
    from service.ml.nets import list_models

    if architecture not in list_models():
        known = ", ".join(list_models())
        raise fail(f"unknown architecture {architecture!r}; known: {known}")


def _candidates_table(validation: dict[str, Any]) -> Table:
    """Every candidate's figures on the time-later window, the one that serves marked."""
    window = validation.get("window", {})
    table = Table(
        title=f"candidates on the {window.get('days', '?')} days to "
        f"{str(window.get('to', '?'))[:10]} ({validation.get('customers', '?')} customers)"
    )
    for column in ("candidate", "Gini", "decile MAPE", "aggregate error", "why"):
        table.add_column(column, overflow="fold")
    served = validation.get("served")
    for name, m in validation.get("candidates", {}).items():
        table.add_row(
            f"{name} (serves)" if name == served else name,
            _shown(m, "normalized_gini", ".3f"),
            _shown(m, "decile_mape", ".3f"),
            _shown(m, "aggregate_revenue_error", "+.1%"),
            validation.get("reasons", {}).get(name, ""),
        )
    return table


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
    """Backtest a model against the BTYD baseline.

    Train on the events up to --as-of, score everyone there, compare with their spend in the
    next --horizon-days, against the BTYD baseline (and, given --shop, the oracle)."""
    from service.training.backtest import backtest

    _check_architecture(architecture)
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
            gini, mape = _shown(m, "normalized_gini", ".3f"), _shown(m, "decile_mape", ".3f")
            error = _shown(m, "aggregate_revenue_error", "+.1%")
            covered = _shown(m, "p10_p90_coverage", ".1%", "")
            table.add_row(population.replace("_", " "), name, gini, mape, error, covered)
    console.print(table)
    console.print(f"wrote {out}/report.json and charts")


def _shown(metrics: dict[str, Any], key: str, spec: str, missing: str = "-") -> str:
    """A metric formatted, or ``missing`` where it is absent or undefined (null)."""
    value = metrics.get(key)
    return missing if value is None else format(value, spec)


@app.command()
def score(
    horizon_days: Horizon,
    out: Annotated[Path, typer.Option(help="The CSV file to write.")],
    as_of: AsOf = None,
    version: Annotated[str, typer.Option(help="A version id or alias.")] = "champion",
) -> None:
    """Score every customer and write a CSV.

    Everyone with an event by --as-of, streamed by chunks."""
    from service.ml.artifacts import device_for
    from service.model_versions.store import load_version
    from service.scoring.export import score_to_csv

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
    """Registered versions, newest first.

    With their aliases, what serves and its normalised Gini on the selection window beside the
    best BTYD candidate's."""
    from service.model_versions import service as registry

    table = Table("version", "aliases", "horizon", "data to", "serves", "Gini", "BTYD Gini", "by")
    with transaction(load_settings()) as session:
        for v in registry.list_versions(session):
            served = v.metrics.get("served", "-")
            candidates = v.metrics.get("candidates", {})
            best: dict[str, Any] = max(
                (candidates[n] for n in ("bgnbd", "paretonbd") if n in candidates),
                key=lambda m: m.get("normalized_gini") or 0.0,
                default={},
            )
            table.add_row(
                v.version,
                ", ".join(v.aliases),
                str(v.horizon_days),
                v.data_to.date().isoformat(),
                served,
                _shown(candidates.get(served, {}), "normalized_gini", ".3f"),
                _shown(best, "normalized_gini", ".3f"),
                v.created_by,
            )
    console.print(table)


@models_app.command("promote")
def models_promote(
    version: Annotated[str, typer.Argument(metavar="VERSION", help="The version id.")],
    alias: Annotated[str, typer.Option(help="champion or challenger.")] = "champion",
) -> None:
    """Point an alias at a version.

    The artifact is loaded and verified first."""
    from service.model_versions import service as registry

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
    """Point an alias back at an earlier version.

    Its artifact is verified first."""
    from service.model_versions import service as registry

    settings = load_settings()
    with transaction(settings) as session:
        change = registry.rollback(session, settings.model_dir, alias, "cli", to)
    console.print(f"{change.alias}: {change.previous_version} -> {change.version}")


@models_app.command("history")
def models_history() -> None:
    """The promotion log, newest first."""
    from service.model_versions import service as registry

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
