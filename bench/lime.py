"""LIME beside SHAP: how far the two agree on a customer's attributions, and what each costs.

Simulates a shop (default 2,000 customers over 540 days), trains a model on it in memory
(``--epochs``, 90-day horizon), then explains ``--customers`` customers (half with an order,
half without; the network serves the latter, the selected candidate the former) one request
at a time, each with both explainers on the same model, inputs and background:

- agreement, per customer, over the top ``--top`` features by |SHAP|: the Spearman rank
  correlation of |SHAP| and |LIME| there, and the overlap of the two top-5 sets;
- LIME's stability: the same figures between LIME at ``SAMPLES`` perturbed copies (served) and at
  LIME's default 5,000;
- cost per explanation (ms, median and p90), SHAP and LIME measured in the same run.

    .venv/bin/python bench/lime.py [--customers 40] [--shop-customers 2000] [--epochs 6]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import spearmanr

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import percentile, report
from service.ml import lime_explain
from service.ml.clv_model import ClvModel
from service.ml.examples import Examples
from service.ml.training import TrainConfig, train
from service.simulator.config import ShopConfig
from service.simulator.memory import end_of_observation, shop_log

LIME_DEFAULT_SAMPLES = 5000


def agreement(reference: np.ndarray, other: np.ndarray, top: int) -> tuple[float, float]:
    """(Spearman of |attributions| over ``reference``'s top features, top-5 overlap share)."""
    a, b = np.abs(reference), np.abs(other)
    order = np.argsort(-a, kind="stable")[:top]
    rho = float(spearmanr(a[order], b[order]).statistic)
    overlap = len(set(order[:5]) & set(np.argsort(-b, kind="stable")[:5])) / 5
    return rho, overlap


def timed(call: Callable[[], np.ndarray]) -> tuple[np.ndarray, float]:
    started = time.perf_counter()
    result = call()
    return result, (time.perf_counter() - started) * 1000


def shap_of(model: ClvModel, one: Examples) -> np.ndarray:
    explained = model.explain(one)
    return np.concatenate([explained.tabular, explained.sequence], axis=1)[0]


def lime_of(model: ClvModel, one: Examples, samples: int) -> np.ndarray:
    explained = lime_explain.explain(model, one, samples)
    return np.concatenate([explained.tabular, explained.sequence], axis=1)[0]


def explain_each(
    model: ClvModel, examples: Examples, top: int
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Per customer, alone as a request would be: (costs in ms, agreement figures)."""
    costs: dict[str, list[float]] = {"shap": [], "lime": [], "lime_5000": []}
    figures: dict[str, list[float]] = {k: [] for k in ("rho", "top5", "rho_5000", "top5_5000")}
    for row in range(len(examples.customers)):
        one = examples.subset(np.arange(len(examples.customers)) == row)
        shap_values, cost = timed(partial(shap_of, model, one))
        costs["shap"].append(cost)
        lime_values, cost = timed(partial(lime_of, model, one, lime_explain.SAMPLES))
        costs["lime"].append(cost)
        lime_many, cost = timed(partial(lime_of, model, one, LIME_DEFAULT_SAMPLES))
        costs["lime_5000"].append(cost)
        rho, overlap = agreement(shap_values, lime_values, top)
        figures["rho"].append(rho)
        figures["top5"].append(overlap)
        rho, overlap = agreement(lime_many, lime_values, top)
        figures["rho_5000"].append(rho)
        figures["top5_5000"].append(overlap)
    return costs, figures


def chosen(model: ClvModel, examples: Examples, customers: int, seed: int) -> Examples:
    """Half with an order, half without, at random."""
    rng = np.random.default_rng(seed)
    bought = examples.portrait["has_purchased"].to_numpy() > 0
    rows = np.zeros(len(bought), dtype=bool)
    for group in (np.flatnonzero(bought), np.flatnonzero(~bought)):
        rows[rng.choice(group, size=min(customers // 2, len(group)), replace=False)] = True
    return examples.subset(rows)


def summary(values: list[float]) -> str:
    finite = [v for v in values if np.isfinite(v)]
    return f"mean {statistics.fmean(finite):.3f}, median {statistics.median(finite):.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=40)
    parser.add_argument("--shop-customers", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--top", type=int, default=10)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    shop = ShopConfig(customers=args.shop_customers, days=540, horizon_days=90, seed=args.seed)
    log, profiles, sources = shop_log(shop)
    as_of = end_of_observation(shop) - timedelta(days=1)
    model = train(log, profiles, sources, as_of, TrainConfig(90, epochs=args.epochs))
    examples = chosen(model, model.examples(log, profiles, sources, as_of), args.customers, 0)
    costs, figures = explain_each(model, examples, args.top)
    served = model.serving.served if model.serving is not None else "deep"
    result: dict[str, Any] = {
        "shop": f"simulated, {args.shop_customers:,} customers, 540 days, seed {args.seed}",
        "model": f"{served} serves customers with an order; {len(model.feature_names)} features",
        "explained": f"{len(examples.customers)} customers, one at a time",
        f"spearman |shap| vs |lime|, top {args.top}": summary(figures["rho"]),
        "top-5 overlap shap vs lime": summary(figures["top5"]),
        f"spearman lime {lime_explain.SAMPLES} vs {LIME_DEFAULT_SAMPLES}": summary(
            figures["rho_5000"]
        ),
        f"top-5 overlap lime {lime_explain.SAMPLES} vs 5000": summary(figures["top5_5000"]),
    }
    for name, label in (
        ("shap", "shap (expected gradients)"),
        ("lime", f"lime ({lime_explain.SAMPLES} samples)"),
        ("lime_5000", f"lime ({LIME_DEFAULT_SAMPLES} samples)"),
    ):
        result[f"ms per explanation, {label}"] = (
            f"p50 {percentile(costs[name], 50):.1f}, p90 {percentile(costs[name], 90):.1f}"
        )
    result["lime / shap cost (p50)"] = (
        f"{percentile(costs['lime'], 50) / percentile(costs['shap'], 50):.1f}x"
    )
    report("lime", result)


if __name__ == "__main__":
    main()
