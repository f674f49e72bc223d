"""The forecast backtest (``clv forecast --backtest``) on a simulated shop and on Online Retail:
weekly MAPE and 80% interval coverage of revenue and orders, beside the seasonal-naive baseline
measured on the same weeks in the same run.

- **Simulated** (in memory, ``service.simulator``): 3,000 customers over 900 days with its
  weekly and yearly season and promotion days, cut 13 weeks before the end of the observed days
  (customers are still being acquired then): two years of history before the cut, so the
  yearly season is modelled and the baseline is the same weeks a year earlier.
- **Online Retail** (``../shared/data``): imported with ``clv import-csv`` as
  ``bench/real_data.py`` does (its recipe and loader), cut at protocol R1's cut-off (moved back to
  the Sunday before, 2011-09-04) and judged on the 13 weeks after, which hold the Christmas peak;
  the export holds one year, so the baseline is the mean of the last 8 weeks.

Each backtest trains its model at the cut-off (``--epochs``, default 5).

    .venv/bin/python bench/forecast.py [--only retail|simulated] [--epochs 10]
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import report
from bench.real_data import DATA, PROTOCOLS, imported_retail
from service.db.session import make_engine, make_session_factory
from service.forecasts.backtest import backtest
from service.ml.training import TrainConfig
from service.simulator.config import ShopConfig
from service.simulator.memory import end_of_observation, shop_log
from service.training import data

WEEKS = 13
SIMULATED = ShopConfig(customers=3_000, days=900, horizon_days=30, seed=31)


def simulated(epochs: int) -> dict[str, Any]:
    log, profiles, sources = shop_log(SIMULATED)
    as_of = end_of_observation(SIMULATED) - timedelta(weeks=WEEKS)
    config = TrainConfig(7 * WEEKS, epochs=epochs)
    return backtest(log, profiles, sources, as_of, WEEKS, config)


def retail(epochs: int) -> dict[str, Any] | None:
    if not DATA.exists():
        print(f"skipped Online Retail: {DATA} is missing")
        return None
    with imported_retail() as shop:
        print(f"Online Retail imported in {shop.import_seconds:.1f} s")
        protocol = PROTOCOLS[0]  # R1: history to 2011-09-09
        engine = make_engine(shop.settings)
        with make_session_factory(engine)() as session:
            log = data.event_log(session, protocol.cutoff + timedelta(weeks=WEEKS + 1))
            profiles, sources = data.profiles(session, shop.settings)
        engine.dispose()
        config = TrainConfig(7 * WEEKS, epochs=epochs)
        return backtest(log, profiles, sources, protocol.cutoff, WEEKS, config)


def show(title: str, found: dict[str, Any]) -> None:
    print(
        f"\n{title}: cut at {found['as_of'][:10]}, {found['weeks']} weeks, "
        f"{found['customers']} customers with an order, serves {found['served']}, "
        f"{found['seconds']:.0f} s; baseline: {found['baseline']}"
    )
    print(
        f"  {'measure':8s} {'MAPE':>7s} {'naive':>7s} {'ratio':>6s} {'cov80':>6s} "
        f"{'total':>7s} {'naive':>7s}"
    )
    for measure, m in found["metrics"].items():
        ratio = m["mape"] / m["baseline_mape"] if m["baseline_mape"] else float("nan")
        print(
            f"  {measure:8s} {m['mape']:7.1%} {m['baseline_mape']:7.1%} {ratio:6.2f} "
            f"{m['coverage_80']:6.1%} {m['total_error']:+7.1%} {m['baseline_total_error']:+7.1%}"
        )
    print(f"  new customers: {found['method']['new_customers']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=("retail", "simulated"))
    parser.add_argument("--epochs", type=int, default=5)
    arguments = parser.parse_args()
    started = time.perf_counter()
    results: dict[str, Any] = {}
    if arguments.only in (None, "simulated"):
        results["simulated"] = simulated(arguments.epochs)
        show("simulated 3,000 customers, 900 days", results["simulated"])
    if arguments.only in (None, "retail"):
        found = retail(arguments.epochs)
        if found is not None:
            results["online_retail"] = found
            show("Online Retail (R1 cut-off)", found)
    summary = {
        name: {m: found["metrics"][m] for m in ("revenue", "orders")}
        for name, found in results.items()
    }
    print()
    report("forecast", {**summary, "seconds": round(time.perf_counter() - started, 1)})


if __name__ == "__main__":
    main()
