"""Training and batch scoring at scale: wall time and peak memory, against the BTYD baseline.

1. Simulates a shop (default 50,000 customers over two years, about 1.5M events) and loads its
   events (COPY) and profiles into a scratch PostgreSQL database.
2. Runs `clv train --horizon-days 365` at the end of the data in its own process: wall time and
   peak RSS of that process (target <= 5 minutes on the 2-core CPU).
3. Runs `clv score` for every customer in its own process: customers/s end to end (start-up,
   model load, reading events, features, network, CSV).
4. In another process, scores the same customers chunk by chunk the way `clv score` does and
   times each part: reading the events (shared), the deep model (features, sequences, BTYD
   features, network) and the BTYD baseline alone (behaviour features and its formulas), so the
   two models' throughputs are compared on the same customers and the same reads.

With `--nproc N [N ...]` it measures training across processes instead of steps 2-4: for each N,
`clv train --nproc N` (N ranks under torchrun, each reading its shard of the customers; N = 1 is
plain `clv train`) on the same shop: wall time, each rank's own peak RSS (the ranks print it),
and what serves with the candidates' validation figures, to compare with one process.

    .venv/bin/python bench/train.py [--customers 50000] [--horizon-days 365] [--device cpu]
    .venv/bin/python bench/train.py --customers 50000 --nproc 1 2
    .venv/bin/python bench/train.py --customers 200000 --nproc 8 --epochs 5
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import report, simulated_shop_in_postgres
from service.config import Settings
from service.db.session import make_engine, make_session_factory
from service.events.repository import customers_until
from service.ml.activity import day_number
from service.ml.artifacts import device_for
from service.ml.features import behaviour_features
from service.model_versions import service as registry
from service.model_versions.store import load_version
from service.scoring.export import CHUNK_CUSTOMERS
from service.simulator.config import ShopConfig
from service.training import data

START = date(2024, 1, 1)


def measured(command: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """(wall seconds, peak RSS in MiB, stdout) of a command run in its own process."""
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(command[:4])} failed ({process.returncode}): {output}")
    return time.perf_counter() - started, usage.ru_maxrss / 1024, output


def trained_with_ranks(
    clv: list[str], window: list[str], processes: int, env: dict[str, str], url: str
) -> dict[str, Any]:
    """``clv train --nproc processes``: wall seconds, each rank's peak RSS in MiB (one process:
    its own, from ``wait4``), and the version's selection figures."""
    command = [*clv, "train", *window] + (["--nproc", str(processes)] if processes > 1 else [])
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
    assert process.stderr is not None
    errors = process.stderr.read()
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"training with {processes} processes failed: {errors[-3000:]}")
    peaks = [float(m.replace(",", "")) for m in re.findall(r"peak memory ([\d,]+) MiB", errors)]
    settings = Settings(_env_file=None, database_url=url)  # type: ignore[call-arg]
    engine = make_engine(settings)
    with make_session_factory(engine)() as session:
        metrics = registry.list_versions(session)[0].metrics
    engine.dispose()
    return {
        "processes": processes,
        "wall_seconds": round(seconds, 1),
        "peak_rss_mib_per_rank": [round(p) for p in peaks] or [round(usage.ru_maxrss / 1024)],
        "served": metrics["served"],
        "candidates": {
            name: {k: round(v, 3) for k, v in figures.items() if k in FIGURES}
            for name, figures in metrics["candidates"].items()
        },
        "held_out_deep": {
            k: round(v, 3) for k, v in metrics["held_out"]["deep"].items() if k in FIGURES
        },
    }


FIGURES = ("normalized_gini", "decile_mape", "aggregate_revenue_error")


def compare(url: str, as_of: datetime, horizon_days: int) -> dict[str, Any]:
    """Child mode: the deep model and the BTYD baseline on the same chunks of customers."""
    settings = Settings(_env_file=None, database_url=url)  # type: ignore[call-arg]
    engine = make_engine(settings)
    factory = make_session_factory(engine)
    with factory() as session:
        _, model = load_version(session, settings.model_dir, "champion", device_for("cpu"))
        customers = customers_until(session, as_of)
        profiles, sources = data.profiles(session, settings)
    seconds = {"read": 0.0, "deep": 0.0, "btyd": 0.0}
    for start in range(0, len(customers), CHUNK_CUSTOMERS):
        chunk = customers[start : start + CHUNK_CUSTOMERS]
        started = time.perf_counter()
        with factory() as session:
            log = data.event_log(session, as_of, customer_range=(chunk[0], chunk[-1]))
        read = time.perf_counter()
        examples = model.examples(log, profiles, sources, as_of)
        model.predict(examples)
        deep = time.perf_counter()
        portrait = behaviour_features(log.activity().days, day_number(as_of))
        model.btyd.predict(portrait, horizon_days)
        btyd = time.perf_counter()
        seconds["read"] += read - started
        seconds["deep"] += deep - read
        seconds["btyd"] += btyd - deep
    engine.dispose()
    count = len(customers)
    return {
        "customers": count,
        "read_seconds": round(seconds["read"], 1),
        "deep_customers_per_s": round(count / (seconds["read"] + seconds["deep"])),
        "btyd_customers_per_s": round(count / (seconds["read"] + seconds["btyd"])),
        "deep_compute_only_customers_per_s": round(count / seconds["deep"]),
        "btyd_compute_only_customers_per_s": round(count / seconds["btyd"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=50_000)
    parser.add_argument("--horizon-days", type=int, default=365)
    parser.add_argument("--device", default="cpu", help="CLV_DEVICE for training and scoring")
    parser.add_argument(
        "--nproc", type=int, nargs="+", help="train as each of these numbers of processes instead"
    )
    parser.add_argument(
        "--epochs", type=int, default=25, help="upper bound on training epochs (with --nproc)"
    )
    parser.add_argument("--compare", help=argparse.SUPPRESS)  # child mode: a database URL
    args = parser.parse_args()
    config = ShopConfig(customers=args.customers, days=730, horizon_days=30, start=START)
    as_of = datetime.combine(START, datetime.min.time(), UTC) + timedelta(days=config.days)
    if args.compare:
        print(json.dumps(compare(args.compare, as_of, args.horizon_days)))
        return

    with simulated_shop_in_postgres(config, args.device) as shop:
        folder, url, events, env = shop.folder, shop.url, shop.events, shop.env
        clv = [sys.executable, "-m", "service.cli"]
        window = ["--horizon-days", str(args.horizon_days), "--as-of", as_of.isoformat()]
        if args.nproc:
            window += ["--epochs", str(args.epochs)]
            runs = [trained_with_ranks(clv, window, n, env, url) for n in args.nproc]
            report(
                f"train_nproc_{args.customers}",
                {"customers": args.customers, "events": events, "runs": runs},
            )
            return
        train_s, train_mib, trained = measured([*clv, "train", *window], env)
        scores = folder / "scores.csv"
        score_s, score_mib, _ = measured([*clv, "score", *window, "--out", str(scores)], env)
        scored = sum(1 for _ in scores.open()) - 1
        _, _, compared = measured(
            [sys.executable, __file__, "--compare", url, "--horizon-days", str(args.horizon_days)],
            env,
        )
        parts = json.loads(compared)
        result = {
            "customers": args.customers,
            "events": events,
            "device": args.device,
            "train_seconds": round(train_s, 1),
            "train_peak_rss_mib": round(train_mib),
            "train_validation": trained.strip().splitlines()[-1],
            "score_cli_seconds": round(score_s, 1),
            "score_cli_customers": scored,
            "score_cli_customers_per_s": round(scored / score_s),
            "score_cli_peak_rss_mib": round(score_mib),
            **{f"same_customers_{k}": v for k, v in parts.items()},
            "deep_vs_btyd_throughput_ratio": round(
                parts["deep_customers_per_s"] / parts["btyd_customers_per_s"], 2
            ),
        }
    report("train", result)


if __name__ == "__main__":
    main()
