"""The fairness chart (PNG): per attribute, each group's mean actual spend beside the mean
predicted by the model with the protected attributes and by the one without them, with the
groups' bootstrap intervals (wide ones mark small groups whose means say little)."""

from __future__ import annotations

from typing import Any

import numpy as np

from service.charts import plt, png

SERIES = (
    ("actual", None, "mean_actual", "0.35"),
    ("predicted, with", "with_protected_attributes", "mean_predicted", "tab:blue"),
    ("predicted, without", "without_protected_attributes", "mean_predicted", "tab:orange"),
)
"""(label, model, metric, colour) of each bar in a group; the actual spend is the same for both
models (the same customers at the same cut-off), so it is read from the first."""


def fairness_png(report: dict[str, Any]) -> bytes:
    """The chart of a report body (``service.fairness.service.compute``)."""
    attributes = report["attributes"]
    figure, axes = plt.subplots(
        max(len(attributes), 1), 1, figsize=(8, 3.2 * max(len(attributes), 1)), squeeze=False
    )
    for axis, attribute in zip(axes[:, 0], attributes, strict=False):
        _attribute_panel(axis, report, attribute)
    if not attributes:
        axes[0, 0].text(0.5, 0.5, "no configured attribute is present", ha="center")
        axes[0, 0].set_axis_off()
    figure.suptitle(
        f"Mean spend per group over {report['horizon_days']} days after "
        f"{report['as_of'][:10]} ({report['customers']} customers)"
    )
    figure.tight_layout()
    return png(figure)


def _attribute_panel(axis: Any, report: dict[str, Any], attribute: str) -> None:
    first = report["with_protected_attributes"]["attributes"][attribute]["groups"]
    names = [group["group"] for group in first]
    positions = np.arange(len(names))
    width = 0.8 / len(SERIES)
    for number, (label, model, metric, colour) in enumerate(SERIES):
        groups = report[model or "with_protected_attributes"]["attributes"][attribute]["groups"]
        values = np.array([group[metric] or 0.0 for group in groups])
        spread = np.array(
            [
                group["intervals"][metric] or [value, value]
                for group, value in zip(groups, values, strict=True)
            ]
        )
        errors = np.clip([values - spread[:, 0], spread[:, 1] - values], 0, None)
        axis.bar(
            positions + (number - 1) * width,
            values,
            width,
            yerr=errors,
            capsize=2,
            error_kw={"linewidth": 0.8},
            label=label,
            color=colour,
        )
    axis.set_xticks(positions, [f"{n}\n({g['count']})" for n, g in zip(names, first, strict=True)])
    axis.set(title=attribute, ylabel="mean spend")
    axis.legend(fontsize=8)
