"""Architectures and compression in one backtest table: GRU, LSTM and transformer side by side,
and the default GRU int8-quantized (``CLV_QUANTIZE=int8``) and pruned (``CLV_PRUNE``).

1. Simulates a shop in memory (default 3,000 customers over 540 days, then a 180-day future),
   and trains each architecture at the end of the observed days (T) with the default training
   configuration, same seed, one torch thread (as API and worker processes run): wall time of
   the whole training (windows, features, BTYD baselines, fitting, selection).
2. Backtest on the same customers (those with an order by T, the BTYD models' domain): each
   network's own expected spend over the 180 days after T (the ``deep`` candidate, whatever the
   selection would serve) against what they spent, normalised Gini, decile MAPE and aggregate
   error (``service.ml.metrics``, as ``clv evaluate``), the BTYD baseline beside.
3. Scoring throughput, customers/s on one thread, of ``ClvModel.predict`` (the network, then the
   served choice: what the worker's ``scoring.engine`` runs once the examples are built) on every
   customer at T, and of the network alone; the best of ``--repeats`` (15) runs, variants
   interleaved so the machine's load falls on each alike. Reading the events and building the
   features, the same for every architecture, are left out (``bench/score.py`` times them).
4. The GRU's int8 and pruned variants: their speed-up over the float GRU measured in the same
   loop, and their metrics' change against it on the same customers.

    .venv/bin/python bench/architectures.py [--customers 3000] [--epochs 25] [--prune 0.3 0.5]
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import report
from service.ml.clv_model import ClvModel
from service.ml.examples import Examples
from service.ml.metrics import evaluate
from service.ml.pruning import pruned
from service.ml.training import TrainConfig, train
from service.simulator.config import ShopConfig
from service.simulator.memory import end_of_observation, shop_log

ARCHITECTURES = ("gru_ziln", "lstm_ziln", "transformer_ziln")
METRICS = ("normalized_gini", "decile_mape", "aggregate_revenue_error")


def best_seconds(calls: dict[str, Callable[[], Any]], repeats: int) -> dict[str, float]:
    """The best of ``repeats`` timings of each call, the calls interleaved."""
    for call in calls.values():  # warm
        call()
    seconds: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(repeats):
        for name, call in calls.items():
            started = time.perf_counter()
            call()
            seconds[name].append(time.perf_counter() - started)
    return {name: min(values) for name, values in seconds.items()}


def metrics(actual: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    measured = evaluate(actual, predicted)
    return {name: round(float(measured[name]), 4) for name in METRICS}


def run(args: argparse.Namespace) -> dict[str, Any]:
    shop = ShopConfig(customers=args.customers, days=args.days, horizon_days=args.horizon, seed=7)
    log, profiles, sources = shop_log(shop)
    as_of = end_of_observation(shop)
    config = TrainConfig(horizon_days=args.horizon, epochs=args.epochs)
    models: dict[str, ClvModel] = {}
    train_seconds: dict[str, float] = {}
    for name in ARCHITECTURES:
        started = time.perf_counter()
        models[name] = train(log, profiles, sources, as_of, replace(config, architecture=name))
        train_seconds[name] = time.perf_counter() - started
        print(f"trained {name} in {train_seconds[name]:.1f} s", flush=True)
    gru = models["gru_ziln"]
    examples = gru.examples(log, profiles, sources, as_of, label_days=args.horizon)
    variants = {
        **models,
        "gru_ziln int8": gru.quantized(),
        **{f"gru_ziln pruned {amount:g}": pruned(gru, amount) for amount in args.prune},
    }
    # Every model sees the same customers' features (one pipeline per model: built per model).
    inputs: dict[str, Examples] = {
        name: examples
        if model.pipeline is gru.pipeline
        else model.examples(log, profiles, sources, as_of, label_days=args.horizon)
        for name, model in variants.items()
    }
    predict = best_seconds(
        {name: lambda m=m, e=inputs[name]: m.predict(e) for name, m in variants.items()},
        args.repeats,
    )
    network = best_seconds(
        {name: lambda m=m, e=inputs[name]: m.logits(e) for name, m in variants.items()},
        args.repeats,
    )
    buyers = examples.portrait["has_purchased"].to_numpy() > 0
    actual = np.asarray(examples.labels, dtype=float)[buyers]
    n = len(examples.customers)
    rows: dict[str, dict[str, Any]] = {}
    for name, model in variants.items():
        assert list(inputs[name].customers) == list(examples.customers)
        rows[name] = {
            **metrics(actual, model.network_clv(inputs[name])[buyers]),
            "train_s": round(train_seconds[name], 1) if name in train_seconds else None,
            "predict_per_s": round(n / predict[name]),
            "network_per_s": round(n / network[name]),
            "network_speedup_vs_gru": round(network["gru_ziln"] / network[name], 2),
            "parameters": sum(p.numel() for p in model.net.parameters()),
        }
    rows["btyd"] = metrics(actual, examples.tabular["btyd_clv"].to_numpy()[buyers])
    for name in rows:
        if name.startswith("gru_ziln "):
            for metric in ("normalized_gini", "decile_mape"):
                change = rows[name][metric] - rows["gru_ziln"][metric]
                rows[name][f"{metric}_change"] = round(change, 4)
    print_table(rows)
    return {
        "shop": f"{args.customers} customers, {args.days} days, seed 7",
        "backtest": f"trained at day {args.days}, outcomes over the next {args.horizon} days",
        "customers_scored": n,
        "customers_with_an_order": int(buyers.sum()),
        "epochs": args.epochs,
        "torch_threads": torch.get_num_threads(),
        **{f"{name}: {key}": value for name, row in rows.items() for key, value in row.items()},
    }


def print_table(rows: dict[str, dict[str, Any]]) -> None:
    columns = (
        ("normalized_gini", "Gini", "8.3f"),
        ("decile_mape", "MAPE", "8.3f"),
        ("aggregate_revenue_error", "agg err", "+8.1%"),
        ("train_s", "train s", "8.1f"),
        ("predict_per_s", "score/s", "9,d"),
        ("network_per_s", "net/s", "9,d"),
        ("network_speedup_vs_gru", "net x", "6.2f"),
        ("normalized_gini_change", "dGini", "+7.3f"),
        ("decile_mape_change", "dMAPE", "+7.3f"),
    )
    print(f"{'model':<22}" + "".join(f"{title:>{_width(spec)}}" for _, title, spec in columns))
    for name, row in rows.items():
        cells = [
            f"{'-':>{_width(spec)}}" if row.get(key) is None else format(row[key], spec)
            for key, _, spec in columns
        ]
        print(f"{name:<22}" + "".join(cells))


def _width(spec: str) -> int:
    """The field width of a format spec such as ``+8.1%`` or ``9,d``."""
    return int(spec.lstrip("+").split(".")[0].split(",")[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=3_000)
    parser.add_argument("--days", type=int, default=540)
    parser.add_argument("--horizon", type=int, default=180)
    parser.add_argument("--epochs", type=int, default=25)
    parser.add_argument("--prune", type=float, nargs="+", default=[0.3, 0.5])
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    torch.set_num_threads(1)  # as API and worker processes score (CLV_TORCH_THREADS=1)
    warnings.filterwarnings("ignore", category=DeprecationWarning)  # torch.ao's notice
    started = time.perf_counter()
    result = run(args)
    result["bench_wall_s"] = round(time.perf_counter() - started, 1)
    report("architectures", result)


if __name__ == "__main__":
    main()
