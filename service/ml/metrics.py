"""Accuracy metrics for CLV predictions, each a small function of (actual, predicted).

Following google/lifetime_value's ``metrics.py`` where it has the same quantity (normalised Gini
from the cumulative gain curve, decile statistics), plus the usual error measures.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.metrics import roc_auc_score


def cumulative_gain(actual: np.ndarray, ranking: np.ndarray) -> np.ndarray:
    """Share of total actual value captured by the top k customers by ``ranking``, k = 0..n."""
    order = np.argsort(-ranking, kind="stable")
    gained = np.cumsum(actual[order]) / max(actual.sum(), 1e-12)
    return np.concatenate([[0.0], gained])


def gini_from_gain(gain: np.ndarray) -> float:
    """Twice the area between the gain curve and the diagonal."""
    x = np.linspace(0, 1, len(gain))
    return float(2 * (np.trapezoid(gain, x) - 0.5))


def normalized_gini(actual: np.ndarray, predicted: np.ndarray) -> float:
    """Gini of the ranking by prediction over the Gini of the perfect ranking (1 = perfect)."""
    perfect = gini_from_gain(cumulative_gain(actual, actual))
    return gini_from_gain(cumulative_gain(actual, predicted)) / perfect if perfect > 0 else 0.0


def decile_table(actual: np.ndarray, predicted: np.ndarray) -> pd.DataFrame:
    """Customers in ten groups by predicted value (0 = lowest): mean predicted and actual."""
    rank = pd.Series(predicted).rank(method="first")
    decile = pd.qcut(rank, 10, labels=False)
    frame = pd.DataFrame({"decile": decile, "predicted": predicted, "actual": actual})
    return frame.groupby("decile")[["predicted", "actual"]].mean()


def decile_mape(actual: np.ndarray, predicted: np.ndarray) -> float:
    """Mean absolute percentage error of the deciles' mean prediction against their mean actual
    (deciles with no actual spend at all are skipped: a percentage of zero is undefined)."""
    table = decile_table(actual, predicted)
    table = table[table["actual"] > 0]
    return float((np.abs(table["predicted"] - table["actual"]) / table["actual"]).mean())


def top_capture(actual: np.ndarray, predicted: np.ndarray, share: float = 0.1) -> float:
    """Share of actual revenue from the top ``share`` of customers by prediction."""
    gain = cumulative_gain(actual, predicted)
    return float(gain[round(share * (len(gain) - 1))])


def finite(value: Any) -> Any:
    """``value`` with NaN and infinities as null, recursively: JSON (and PostgreSQL's JSON type)
    has none, and an undefined metric (a Spearman of constants, a decile MAPE with no spend) must
    not fail what stores it."""
    if isinstance(value, dict):
        return {key: finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [finite(item) for item in value]
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def evaluate(
    actual: np.ndarray,
    predicted: np.ndarray,
    purchase_probability: np.ndarray | None = None,
    p10: np.ndarray | None = None,
    p90: np.ndarray | None = None,
) -> dict[str, Any]:
    actual, predicted = np.asarray(actual, dtype=float), np.asarray(predicted, dtype=float)
    result: dict[str, Any] = {
        "customers": len(actual),
        "normalized_gini": normalized_gini(actual, predicted),
        "spearman": float(stats.spearmanr(actual, predicted).statistic),
        "decile_mape": decile_mape(actual, predicted),
        "mae": float(np.mean(np.abs(actual - predicted))),
        "rmse": float(np.sqrt(np.mean((actual - predicted) ** 2))),
        "aggregate_revenue_error": (
            float(predicted.sum() / actual.sum() - 1) if actual.sum() > 0 else math.nan
        ),
        "top10_revenue_capture": top_capture(actual, predicted),
        "actual_revenue": float(actual.sum()),
        "predicted_revenue": float(predicted.sum()),
    }
    bought = actual > 0
    if purchase_probability is not None and 0 < bought.mean() < 1:
        result["purchase_auc"] = float(roc_auc_score(bought, purchase_probability))
    if p10 is not None and p90 is not None:
        result["p10_p90_coverage"] = float(np.mean((actual >= p10) & (actual <= p90)))
    return result
