"""The BTYD candidates with and without the yearly season (``service.ml.btyd.season``), on the
same customers of simulated shops, against what they then spent.

Each shop (the simulator's season: rates 25% above their yearly average on 21 December, plus
promotion days) is cut at the end of its observed days, as ``bench/real_data.py`` cuts it;
BG/NBD and Pareto/NBD are fitted on the history, once as analysts fit them and once with the
repeat purchases' days (the season where the likelihood-ratio test keeps it), and compared on
the customers with an order then: normalised Gini, decile MAPE, aggregate error and the churn
gap (the largest |predicted - observed| share without an order, over deciles of predicted
churn). The 1,000-customer shop is run at five seeds: its figures move from seed to seed.
Fit times are the median of three, plain and seasonal in the same run.

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
        for seed in (22, 122, 222, 322, 422)
    },
    "small 3,000": ShopConfig(customers=3_000, days=540, horizon_days=180, seed=23),
    "small 10,000": ShopConfig(customers=10_000, days=540, horizon_days=180, seed=24),
}


def churn_gap(quiet: np.ndarray, ordered: np.ndarray) -> float:
    decile = pd.qcut(pd.Series(quiet).rank(method="first"), 10, labels=False).to_numpy()
    return max(abs(quiet[decile == d].mean() - (~ordered[decile == d]).mean()) for d in range(10))


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


def shop(config: ShopConfig) -> None:
    log, _, _ = shop_log(config)
    as_of = end_of_observation(config)
    activity = log.until(as_of).activity()
    features = behaviour_features(activity.days, day_number(as_of))
    repeats = repeat_days(activity, as_of)
    buyers = features[features["has_purchased"] > 0]
    end = as_of + timedelta(days=config.horizon_days)
    actual = log.spend_between(as_of, end).reindex(buyers.index, fill_value=0.0).to_numpy()
    for name in ("bgnbd", "paretonbd"):
        for label, days in (("plain", None), ("season", repeats)):
            baseline, seconds = timed_fit(name, features, days)
            spend = baseline.predict(buyers, config.horizon_days)["btyd_clv"].to_numpy()
            quiet = baseline.probability_no_purchase(buyers, config.horizon_days)
            m = evaluate(actual, spend)
            season = baseline.season_
            found = (
                f"peak day {season.peak_day_of_year}, amplitude {season.amplitude:.2f}, "
                f"LR {season.statistic:.0f}"
                if season is not None
                else ("none passed" if days is not None else "")
            )
            print(
                f"  {name:9s} {label:6s} {m['normalized_gini']:6.3f} {m['decile_mape']:6.3f} "
                f"{m['aggregate_revenue_error']:+7.1%} {churn_gap(quiet, actual > 0):6.3f} "
                f"{seconds:6.2f}s  {found}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", help="shop names starting with these")
    arguments = parser.parse_args()
    for title, config in SHOPS.items():
        if arguments.only and not any(title.startswith(o) for o in arguments.only):
            continue
        print(f"\n{title}: {config.customers} customers, cut at day {config.days}")
        print(f"  {'model':9s} {'':6s} {'Gini':>6s} {'dMAPE':>6s} {'agg':>7s} {'churn':>6s} fit")
        shop(config)


if __name__ == "__main__":
    main()
