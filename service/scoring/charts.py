"""The feature-importance chart (PNG) of ``/v1/reports/feature-importance.png``."""

from __future__ import annotations

from matplotlib.patches import Patch

from service.charts import plt, png
from service.scoring.schemas import FeatureImportanceRead


def importance_png(report: FeatureImportanceRead, top: int = 20) -> bytes:
    """A bar chart of the ``top`` features by mean |SHAP value|, coloured by group."""
    shown = report.features[:top][::-1]
    groups = sorted({f.group for f in shown})
    colours = {g: plt.get_cmap("tab10")(i % 10) for i, g in enumerate(groups)}
    figure, axes = plt.subplots(figsize=(9, 0.32 * len(shown) + 1.5))
    axes.barh(
        [f.name for f in shown],
        [f.mean_abs_contribution for f in shown],
        color=[colours[f.group] for f in shown],
    )
    handles = [Patch(color=colour, label=group) for group, colour in colours.items()]
    axes.legend(handles=handles, loc="lower right", fontsize=8)
    axes.set_xlabel("mean |SHAP value| (shop currency)")
    axes.set_title(f"{report.model_version}: what drives the score ({report.customers} customers)")
    figure.tight_layout()
    return png(figure)
