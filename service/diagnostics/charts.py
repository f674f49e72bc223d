"""The BTYD diagnostic charts, drawn from a stored report's numbers (no refit to draw)."""

from __future__ import annotations

from typing import Any

import numpy as np

from service.charts import plt, png
from service.diagnostics.schemas import Chart

TITLES: dict[Chart, str] = {
    "frequency_recency": "Expected purchase days in the next {days} days",
    "probability_alive": "Probability alive",
    "calibration": "Holdout purchase days by calibration frequency",
}


def btyd_png(body: dict[str, Any], chart: Chart) -> bytes:
    if chart == "calibration":
        return _calibration(body)
    matrices = body["matrices"]
    key = "expected_purchases" if chart == "frequency_recency" else "probability_alive"
    values = np.array(
        [[np.nan if v is None else v for v in row] for row in matrices[key]], dtype=np.float64
    )
    figure, axes = plt.subplots(figsize=(7, 5.5))
    recencies, frequencies = matrices["recencies"], matrices["frequencies"]
    image = axes.imshow(
        values,
        origin="lower",
        aspect="auto",
        cmap="viridis",
        extent=(recencies[0], recencies[-1], frequencies[0] - 0.5, frequencies[-1] + 0.5),
    )
    figure.colorbar(image, ax=axes)
    axes.set_xlabel("recency (days from first to last purchase)")
    axes.set_ylabel("frequency (repeat purchase days)")
    axes.set_title(
        f"{TITLES[chart].format(days=body['holdout_days'])}\n"
        f"{body['count_model']}, customer age {matrices['age_days']:.0f} days"
    )
    figure.tight_layout()
    return png(figure)


def _calibration(body: dict[str, Any]) -> bytes:
    rows = body["calibration"]
    labels = [row["frequency"] for row in rows]
    figure, axes = plt.subplots(figsize=(7, 4.5))
    axes.plot(labels, [row["actual"] for row in rows], marker="o", label="actual")
    axes.plot(labels, [row["predicted"] for row in rows], marker="s", label=body["count_model"])
    axes.set_xlabel("repeat purchase days in the calibration period")
    axes.set_ylabel(f"mean purchase days in the {body['holdout_days']}-day holdout")
    axes.set_title(TITLES["calibration"])
    axes.legend()
    figure.tight_layout()
    return png(figure)
