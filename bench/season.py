"""The BTYD candidates with and without the yearly season (``service.ml.btyd.season``), on the
same customers of simulated shops, against what they then spent.

Each shop (the simulator's season: rates 25% above their yearly average on 21 December, plus
promotion days) is cut at the end of its observed days, as ``bench/real_data.py`` cuts it;
BG/NBD and Pareto/NBD are fitted on the history as analysts fit them, and Pareto/NBD once more
with the repeat purchases' days (the season where the likelihood-ratio test keeps it), compared on
the customers with an order then: normalised Gini, decile MAPE, aggregate error and the churn
gap (the largest |predicted - observed| share without an order, over deciles of predicted
churn) beside the 95th percentile of the gap a perfectly calibrated model shows by chance. The
1,000-customer shop is run at ten seeds, and summed up over them: its figures move from seed to
seed. Fit times are the median of three, plain and seasonal in the same run.

    .venv/bin/python bench/season.py [--only NAME ...]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import churn_calibration
from service.ml.activity import day_number
from service.ml.btyd.baseline import BtydBaseline
from service.ml.features import behaviour_features
from service.ml.metrics import evaluate
from service.ml.training.baselines import repeat_days
from service.simulator.config import ShopConfig
from service.simulator.memory import end_of_observation, shop_log

SHOPS = {
    "young 3,000 (270 days, H 270)": ShopConfig(
        customers=3_000, days=270, horizon_days=270, seed=21
    ),
    **{
        f"small 1,000 seed {seed}": ShopConfig(
            customers=1_000, days=540, horizon_days=180, seed=seed
        )
        for seed in range(22, 1_000, 100)
    },
    "small 3,000": ShopConfig(customers=3_000, days=540, horizon_days=180, seed=23),
    "small 10,000": ShopConfig(customers=10_000, days=540, horizon_days=180, seed=24),
}


def timed_fit(
    name: str, features: pd.DataFrame, repeats: np.ndarray | None
) -> tuple[BtydBaseline, float]:
    times, baseline = [], None
    for _ in range(3):
        started = time.perf_counter()
        baseline = BtydBaseline(name).fit(features, repeats)  # type: ignore[arg-type]
        times.append(time.perf_counter() - started)
    assert baseline is not None
    return baseline, statistics.median(times)


def shop(config: ShopConfig) -> list[dict[str, float | str]]:
    """Print the shop's rows; return them for the summary over seeds."""
    rows: list[dict[str, float | str]] = []
    log, _, _ = shop_log(config)
    as_of = end_of_observation(config)
    activity = log.until(as_of).activity()
    features = behaviour_features(activity.days, day_number(as_of))
    repeats = repeat_days(activity, as_of)
    buyers = features[features["has_purchased"] > 0]
    end = as_of + timedelta(days=config.horizon_days)
    actual = log.spend_between(as_of, end).reindex(buyers.index, fill_value=0.0).to_numpy()
    fits = (
        ("bgnbd", "plain", None),
        ("paretonbd", "plain", None),
        ("paretonbd", "season", repeats),
    )
    for name, label, days in fits:
        baseline, seconds = timed_fit(name, features, days)
        spend = baseline.predict(buyers, config.horizon_days)["btyd_clv"].to_numpy()
        quiet = baseline.probability_no_purchase(buyers, config.horizon_days)
        m, churn = evaluate(actual, spend), churn_calibration(quiet, actual > 0)
        season = baseline.season_
        found = (
            f"peak day {season.peak_day_of_year}, amplitude {season.amplitude:.2f}, "
            f"LR {season.statistic:.0f}"
            if season is not None
            else ("none passed" if days is not None else "")
        )
        rows.append({"model": name, "fit": label, **m})
        print(
            f"  {name:9s} {label:6s} {m['normalized_gini']:6.3f} {m['decile_mape']:6.3f} "
            f"{m['aggregate_revenue_error']:+7.1%} "
            f"{churn['gap']:6.3f} {churn['chance_p95']:6.3f} "
            f"{seconds:6.2f}s  {found}"
        )
    return rows


def summary(rows: list[dict[str, float | str]]) -> None:
    """Mean Gini and decile MAPE, and mean and root-mean-square aggregate error, over seeds."""
    frame = pd.DataFrame(rows)
    grouped = frame.groupby(["model", "fit"])
    table = pd.DataFrame(
        {
            "Gini": grouped["normalized_gini"].mean(),
            "dMAPE": grouped["decile_mape"].mean(),
            "agg mean": grouped["aggregate_revenue_error"].mean(),
            "agg rms": grouped["aggregate_revenue_error"].apply(lambda e: np.sqrt((e**2).mean())),
        }
    )
    print(table.round(3).to_string())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", help="shop names starting with these")
    arguments = parser.parse_args()
    small: list[dict[str, float | str]] = []
    for title, config in SHOPS.items():
        if arguments.only and not any(title.startswith(o) for o in arguments.only):
            continue
        print(f"\n{title}: {config.customers} customers, cut at day {config.days}")
        print(
            f"  {'model':9s} {'':6s} {'Gini':>6s} {'dMAPE':>6s} {'agg':>7s} "
            f"{'churn':>6s} {'chance':>6s} fit"
        )
        rows = shop(config)
        if title.startswith("small 1,000"):
            small += rows
    if small:
        print(f"\nsmall 1,000 over {len(small) // 3} seeds:")
        summary(small)


if __name__ == "__main__":
    main()
