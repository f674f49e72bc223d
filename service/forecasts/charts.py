"""The forecast chart (PNG): revenue per period as it happened, then as forecast with its 80%
interval, and the part of it from customers not acquired yet."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from service.charts import plt, png


def forecast_png(body: dict[str, Any]) -> bytes:
    """The chart of a forecast body (``service.forecasts.service.compute``)."""
    figure, axis = plt.subplots(figsize=(9, 4.2))
    history = body["history"]
    if history:
        axis.plot(
            _days(p["start"] for p in history),
            [p["revenue"] for p in history],
            color="0.35",
            marker=".",
            label="revenue taken",
        )
    starts = _days(p["start"] for p in body["periods"])
    revenue = [p["revenue"] for p in body["periods"]]
    axis.fill_between(
        starts,
        [r["p10"] for r in revenue],
        [r["p90"] for r in revenue],
        color="tab:blue",
        alpha=0.2,
        label="80% interval",
    )
    axis.plot(
        starts, [r["expected"] for r in revenue], color="tab:blue", marker=".", label="expected"
    )
    axis.plot(
        starts,
        [p["new_customers"]["revenue"]["expected"] for p in body["periods"]],
        color="tab:orange",
        linestyle="--",
        label="of which new customers",
    )
    axis.set_ylabel(f"revenue per {body['granularity']}")
    axis.set_ylim(bottom=0)
    axis.legend(loc="upper left", fontsize="small")
    axis.set_title(
        f"Forecast from {body['first_day']} over {body['horizon_days']} days "
        f"(champion {body['model_version']})"
    )
    figure.autofmt_xdate()
    figure.tight_layout()
    return png(figure)


def _days(isoformat: Iterable[str]) -> np.ndarray:
    return np.array(list(isoformat), dtype="datetime64[D]")
