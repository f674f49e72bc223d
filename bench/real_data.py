"""Accuracy where users try it first: a real shop's export, and young and small simulated shops.

**Online Retail** (``../shared/data``, protocols R1 and R2 of its README) goes through the CLI as
a user would: ``clv import-csv`` (the README's recipe), ``clv train --as-of`` the cut-off and
``clv score``, each timed with its peak RSS. Every candidate the training weighed is then scored
on the protocol's customers (those with a positive-value day before the cut-off) against their net
spend in the holdout, floored at 0, beside the reference BTYD figures of the data's README.

**Simulated shops** (in memory, the future known): young (9 months of history, a 270-day
horizon), small (1,000, 3,000 and 10,000 customers, a 180-day horizon) and, for contrast, large
(50,000 customers over two years, a 365-day horizon), each trained at the end
of its observed days and judged on the customers with an order then. For these the table also
shows the churn calibration: the largest gap, over deciles of predicted churn, between the
predicted and the observed share of customers with no order in the horizon, beside the gap a
perfectly calibrated model would show by chance on as many customers (``churn_calibration``).

    .venv/bin/python bench/real_data.py [--only retail|simulated] [--out FILE.json]
"""

from __future__ import annotations

import argparse
import json
import lzma
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import churn_calibration
from service.config import Settings
from service.db.session import make_engine, make_session_factory
from service.ml import artifacts
from service.ml.clv_model import ClvModel
from service.ml.metrics import evaluate
from service.ml.training import TrainConfig, train
from service.simulator.config import ShopConfig
from service.simulator.memory import end_of_observation, shop_log
from service.training import data

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "online_retail.csv.xz"
CLV = str(Path(sys.executable).with_name("clv"))
IMPORT = [
    "--customer-col", "CustomerID", "--time-col", "InvoiceDate", "--order-col", "InvoiceNo",
    "--cancel-prefix", "C", "--sku-col", "StockCode", "--name-col", "Description",
    "--quantity-col", "Quantity", "--price-col", "UnitPrice", "--timezone", "Europe/London",
]  # fmt: skip


@dataclass(frozen=True)
class Protocol:
    name: str
    cutoff: datetime  # the end of the history day (UK dates; the file's last day is 2011-12-09)
    days: int
    reference: dict[str, tuple[float, ...]]  # model -> Gini, Spearman, decile MAPE, MAE, agg.


PROTOCOLS = (
    Protocol(
        "R1",
        datetime(2011, 9, 10, tzinfo=UTC),
        91,
        {
            "naive rate": (0.752, 0.457, 0.190, 814, 0.199),
            "BG/NBD + GG": (0.771, 0.511, 0.377, 561, -0.395),
            "Pareto/NBD + GG": (0.771, 0.510, 0.334, 568, -0.396),
        },
    ),
    Protocol(
        "R2",
        datetime(2011, 7, 1, tzinfo=UTC),
        162,
        {
            "naive rate": (0.777, 0.489, 0.434, 1406, 0.577),
            "BG/NBD + GG": (0.801, 0.544, 0.179, 809, -0.293),
            "Pareto/NBD + GG": (0.801, 0.544, 0.179, 809, -0.293),
        },
    ),
)
SIMULATED = (
    ("young (9 months)", ShopConfig(customers=3_000, days=270, horizon_days=270, seed=21)),
    ("small 1,000", ShopConfig(customers=1_000, days=540, horizon_days=180, seed=22)),
    ("small 3,000", ShopConfig(customers=3_000, days=540, horizon_days=180, seed=23)),
    ("small 10,000", ShopConfig(customers=10_000, days=540, horizon_days=180, seed=24)),
    ("large 50,000", ShopConfig(customers=50_000, days=730, horizon_days=365, seed=25)),
)
KEYS = ("normalized_gini", "spearman", "decile_mape", "mae", "aggregate_revenue_error")


def timed(command: Sequence[str], env: dict[str, str]) -> tuple[str, float, float]:
    """(stdout, wall seconds, peak RSS in MiB) of a CLI command, through GNU time."""
    started = time.perf_counter()
    done = subprocess.run(
        ["/usr/bin/time", "-f", "%M", *command], env=env, capture_output=True, text=True
    )
    seconds = time.perf_counter() - started
    if done.returncode:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}")
    peak_kib = int(done.stderr.strip().splitlines()[-1])
    return done.stdout, seconds, peak_kib / 1024


def retail_truth(csv: Path, protocol: Protocol) -> tuple[pd.Index, np.ndarray]:
    """The protocol's customers and their holdout spend, from the raw lines with pandas."""
    lines = pd.read_csv(csv, dtype={"CustomerID": str, "InvoiceNo": str})
    lines = lines[lines["CustomerID"].notna()]
    lines["customer"] = lines["CustomerID"].str.replace(r"\.0$", "", regex=True)
    moment = pd.to_datetime(lines["InvoiceDate"]).dt.tz_localize("Europe/London")
    lines["at"] = moment.dt.tz_convert("UTC")
    lines["value"] = lines["Quantity"] * lines["UnitPrice"]
    cutoff, end = protocol.cutoff, protocol.cutoff + timedelta(days=protocol.days)
    before = lines[lines["at"] <= cutoff]
    daily = before.groupby(["customer", before["at"].dt.date])["value"].sum()
    customers = pd.Index(sorted(set(daily[daily > 0].index.get_level_values(0))))
    after = lines[(lines["at"] > cutoff) & (lines["at"] <= end)]
    actual = after.groupby("customer")["value"].sum().reindex(customers, fill_value=0.0)
    return customers, actual.clip(lower=0).to_numpy()


def candidate_rows(
    model: ClvModel, scores: pd.DataFrame, customers: pd.Index, actual: np.ndarray, frame: Any
) -> dict[str, dict[str, Any]]:
    """Every candidate of ``model`` and the served score, judged on ``customers``."""
    served = scores.reindex(customers).fillna(0.0)
    rows = {
        "served": evaluate(
            actual,
            served["clv"].to_numpy(),
            p10=served["p10"].to_numpy(),
            p90=served["p90"].to_numpy(),
        )
    }
    candidates = frame.reindex(customers).fillna(0.0)
    for name in candidates.columns:
        rows[name] = evaluate(actual, candidates[name].to_numpy())
    return rows


@dataclass(frozen=True)
class ImportedRetail:
    """The Online Retail export unpacked and imported (``clv import-csv``) into a SQLite file."""

    csv: Path
    work: Path
    env: dict[str, str]
    settings: Settings
    import_seconds: float
    import_peak_rss_mib: float
    import_output: str


@contextmanager
def imported_retail() -> Iterator[ImportedRetail]:
    """The shop in a temporary folder, removed after."""
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        csv = work / "online_retail.csv"
        with lzma.open(DATA) as source, csv.open("wb") as target:
            shutil.copyfileobj(source, target)
        url = f"sqlite:///{work / 'retail.db'}"
        env = {**os.environ, "CLV_DATABASE_URL": url, "CLV_MODEL_DIR": str(work / "models")}
        timed([CLV, "db", "upgrade"], env)
        printed, seconds, peak = timed([CLV, "import-csv", str(csv), *IMPORT], env)
        settings = Settings(database_url=url, model_dir=work / "models")
        yield ImportedRetail(csv, work, env, settings, seconds, peak, printed)


def retail(out: dict[str, Any]) -> None:
    if not DATA.exists():
        print(f"skipped Online Retail: {DATA} is missing")
        return
    with imported_retail() as shop:
        seconds, peak = shop.import_seconds, shop.import_peak_rss_mib
        out["retail_import"] = {"seconds": round(seconds, 1), "peak_rss_mib": round(peak)}
        print(
            f"import: {seconds:.1f} s, peak RSS {peak:.0f} MiB; "
            + shop.import_output.strip()[-160:]
        )
        for protocol in PROTOCOLS:
            out[protocol.name] = retail_protocol(
                protocol, shop.csv, shop.env, shop.settings, shop.work
            )


def retail_protocol(
    protocol: Protocol, csv: Path, env: dict[str, str], settings: Settings, work: Path
) -> dict[str, Any]:
    as_of, days = protocol.cutoff.isoformat(), str(protocol.days)
    printed, train_s, train_rss = timed(
        [CLV, "train", "--horizon-days", days, "--as-of", as_of], env
    )
    version = re.search(r"registered (\S+)", printed)
    if version is None:
        raise SystemExit(f"clv train did not register a version:\n{printed}")
    scores_csv = work / f"{protocol.name}.csv"
    command = [CLV, "score", "--horizon-days", days, "--as-of", as_of, "--out", str(scores_csv)]
    _, score_s, score_rss = timed([*command, "--version", version.group(1)], env)
    scores = pd.read_csv(scores_csv, dtype={"customer_id": str}).set_index("customer_id")
    model = artifacts.load(settings.model_dir / version.group(1))
    engine = make_engine(settings)
    with make_session_factory(engine)() as session:
        log = data.event_log(session, protocol.cutoff)
        profiles, sources = data.profiles(session, settings)
    engine.dispose()
    examples = model.examples(log, profiles, sources, protocol.cutoff)
    customers, actual = retail_truth(csv, protocol)
    rows = candidate_rows(model, scores, customers, actual, model.candidates(examples))
    validation = model.report.validation
    report = {
        "customers": len(customers),
        "served": validation.served,
        "seasons": validation.seasons,
        "selection": {
            "window": validation.window.to_json(),
            "candidates": validation.candidates,
            "reasons": validation.reasons,
        },
        "holdout": rows,
        "reference": protocol.reference,
        "train": {"seconds": round(train_s, 1), "peak_rss_mib": round(train_rss)},
        "score": {"seconds": round(score_s, 1), "peak_rss_mib": round(score_rss)},
    }
    show(f"Online Retail {protocol.name}", report, protocol.reference)
    return report


def simulated(out: dict[str, Any]) -> None:
    for name, config in SIMULATED:
        started = time.perf_counter()
        log, profiles, sources = shop_log(config)
        as_of = end_of_observation(config)
        model = train(log, profiles, sources, as_of, TrainConfig(horizon_days=config.horizon_days))
        seconds = time.perf_counter() - started
        examples = model.examples(log, profiles, sources, as_of)
        buyers = examples.customers[examples.portrait["has_purchased"].to_numpy() > 0]
        end = as_of + timedelta(days=config.horizon_days)
        spend = log.spend_between(as_of, end).reindex(buyers, fill_value=0.0).to_numpy()
        scores = model.predict(examples)
        rows = candidate_rows(model, scores, buyers, spend, model.candidates(examples))
        report = {
            "customers": len(buyers),
            "served": model.report.validation.served,
            "seasons": model.report.validation.seasons,
            "holdout": rows,
            "churn": churn_calibration(
                1 - scores.loc[buyers, "purchase_probability"].to_numpy(), spend > 0
            ),
            "seconds": round(seconds, 1),
        }
        show(f"simulated {name}", report, {})
        out[name] = report


def show(title: str, report: dict[str, Any], reference: dict[str, tuple[float, ...]]) -> None:
    served = report["served"]
    print(f"\n{title}: {report['customers']} customers; serves {served}")
    print(f"  {'model':18s} {'Gini':>6s} {'Spear.':>6s} {'dMAPE':>6s} {'MAE':>7s} {'agg':>7s} cov")
    for name, m in report["holdout"].items():
        label = f"served ({served})" if name == "served" else name
        values = [m[k] if m[k] is not None else float("nan") for k in KEYS]
        coverage = m.get("p10_p90_coverage")
        shown = f"{coverage:.3f}" if coverage is not None else ""
        print(
            f"  {label:18s} {values[0]:6.3f} {values[1]:6.3f} {values[2]:6.3f} "
            f"{values[3]:7.0f} {values[4]:+7.1%} {shown}"
        )
    for name, (gini, spearman, mape, mae, aggregate) in reference.items():
        print(
            f"  {'ref ' + name:18s} {gini:6.3f} {spearman:6.3f} {mape:6.3f} {mae:7.0f} "
            f"{aggregate:+7.1%}"
        )
    keys = ("seasons", "train", "score", "seconds", "churn")
    extra = {k: report[k] for k in keys if k in report}
    print(f"  {extra}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=("retail", "simulated"))
    parser.add_argument("--out", type=Path)
    arguments = parser.parse_args()
    out: dict[str, Any] = {}
    if arguments.only in (None, "retail"):
        retail(out)
    if arguments.only in (None, "simulated"):
        simulated(out)
    if arguments.out:
        arguments.out.write_text(json.dumps(out, indent=1, default=str))


if __name__ == "__main__":
    main()
