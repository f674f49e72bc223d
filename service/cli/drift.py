"""``clv drift``: a drift check, computed here rather than by a worker, and stored."""

# Beyond typer, rich and the standard library, imports go inside the commands: --help is instant.
from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from service.cli.common import (
    AsOf,
    console,
    load_settings,
    parse_as_of,
    session_factory,
    stages,
)

if TYPE_CHECKING:
    from service.drift.schemas import DriftReportRead, FeatureDriftRead, ShiftRead

app = typer.Typer()


@app.command()
def drift(
    as_of: AsOf = None,
    top: Annotated[int, typer.Option(min=1, help="Features to list, largest PSI first.")] = 10,
) -> None:
    """Check for drift since the champion's training data.

    Compare the champion's training population (customers active in the CLV_DRIFT_WINDOW_DAYS
    before its data end) with the customers active before --as-of: purchase rate of the shop
    and of each profile segment, predicted spend, features. Stored, so GET /v1/monitoring/drift
    and /metrics serve it; with CLV_LEARNING_ON_DRIFT, drift queues the learning job."""
    from service.drift.service import check_drift

    settings = load_settings()
    moment = parse_as_of(as_of)
    with session_factory(settings) as factory, stages("drift") as progress:
        report = check_drift(factory, settings, as_of=moment, actor="cli", progress=progress)
    console.print(_rates_table(report))
    console.print(_distributions_table(report, top))
    verdict = "[red]drift[/red]" if report.drifted else "[green]no drift[/green]"
    console.print(
        f"{verdict}: champion {report.model_version}, {report.reference.customers} customers "
        f"active by {report.reference.window_to:%Y-%m-%d} against {report.current.customers} "
        f"by {report.current.window_to:%Y-%m-%d} ({report.window_days}-day windows); "
        f"stored as report {report.id}"
    )
    for reason in report.reasons:
        console.print(f"  - {reason}")
    if report.learning_job_id is not None:
        console.print(f"queued learning job {report.learning_job_id}")


def _rates_table(report: DriftReportRead) -> Table:
    columns = ("orders / active customer / 30 days", "reference", "now", "change", "vs median")
    table = Table(*columns, "drift", title="purchase rate")
    rate = report.purchase_rate
    change = f"{rate.change:+.0%}" if rate.change is not None else ""
    table.add_row(
        "shop", f"{rate.reference:.3f}", f"{rate.current:.3f}", change, "", _flag(rate.drifted)
    )
    for s in report.segments:
        table.add_row(
            f"{s.attribute}={s.level}",
            f"{s.reference_rate:.3f}",
            f"{s.current_rate:.3f}",
            f"{s.change:+.0%}",
            f"{s.excess_change:+.0%} (z {s.z:+.1f})",
            _flag(s.drifted),
        )
    return table


def _distributions_table(report: DriftReportRead, top: int) -> Table:
    columns = ("distribution", "group", "PSI", "KS", "mean then", "mean now")
    table = Table(*columns, "drift", title="distributions (largest PSI first)")
    rows: list[tuple[str, str, ShiftRead | FeatureDriftRead]]
    rows = [("predicted spend (clv)", "score", report.score)]
    rows += [(f.feature, f.group, f) for f in report.features[:top]]
    for name, group, shift in rows:
        figures = f"{shift.psi:.3f}", f"{shift.ks:.3f}"
        means = f"{shift.reference_mean:.4g}", f"{shift.current_mean:.4g}"
        table.add_row(name, group, *figures, *means, _flag(shift.drifted))
    return table


def _flag(drifted: bool) -> str:
    return "[red]yes[/red]" if drifted else ""
