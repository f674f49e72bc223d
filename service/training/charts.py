"""Backtest charts (PNG): cumulative gain, predicted against actual by decile, calibration of the
purchase probability."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from service.charts import plt, save
from service.ml.metrics import cumulative_gain, decile_table


def gain_chart(actual: np.ndarray, predictions: dict[str, np.ndarray], path: Path) -> None:
    figure, axis = plt.subplots(figsize=(6, 5))
    share = np.linspace(0, 1, len(actual) + 1)
    axis.plot(share, cumulative_gain(actual, actual), "k:", label="perfect")
    for name, predicted in predictions.items():
        axis.plot(share, cumulative_gain(actual, predicted), label=name)
    axis.plot([0, 1], [0, 1], color="grey", linewidth=0.8, label="random")
    axis.set(
        xlabel="share of customers, by predicted value",
        ylabel="share of actual revenue",
        title="Cumulative gain",
    )
    axis.legend()
    figure.tight_layout()
    save(figure, path)


def decile_chart(actual: np.ndarray, predictions: dict[str, np.ndarray], path: Path) -> None:
    figure, axes = plt.subplots(
        1, len(predictions), figsize=(5 * len(predictions), 4), squeeze=False
    )
    for axis, (name, predicted) in zip(axes[0], predictions.items(), strict=True):
        table = decile_table(actual, predicted)
        x = np.arange(len(table))
        axis.bar(x - 0.2, table["predicted"], width=0.4, label="predicted")
        axis.bar(x + 0.2, table["actual"], width=0.4, label="actual")
        axis.set(xlabel="decile of predicted value", ylabel="mean spend", title=name)
        axis.legend()
    figure.tight_layout()
    save(figure, path)


def calibration_chart(actual: np.ndarray, probability: np.ndarray, path: Path) -> None:
    bins = pd.cut(probability, np.linspace(0, 1, 11), include_lowest=True)
    frame = pd.DataFrame({"bin": bins, "p": probability, "bought": actual > 0})
    table = frame.groupby("bin", observed=True)[["p", "bought"]].mean()
    figure, axis = plt.subplots(figsize=(5, 5))
    axis.plot([0, 1], [0, 1], color="grey", linewidth=0.8)
    axis.plot(table["p"], table["bought"], "o-")
    axis.set(
        xlabel="predicted purchase probability",
        ylabel="share who bought",
        title="Calibration of the purchase probability",
    )
    figure.tight_layout()
    save(figure, path)
