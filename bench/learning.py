"""Continuous learning after a shift in behaviour: accuracy before and after, the decisions,
and the learning job's wall time.

1. Simulates a shop (default 50,000 customers, 540 days) whose organic customers (about a third)
   buy a quarter as often from day 380 on, without seasons (so the shift is not mixed up with
   the time of year), and loads it into a scratch PostgreSQL database.
2. Trains a champion at day 310 (horizon 90 days) and measures it on the 60 days before the
   shift and on the last 60 days (the learning loop's holdout).
3. Runs the learning job (warm start: fine-tunes the champion on the newest windows) and times
   it: reading the events, training the challenger, judging both on the holdout, registering
   and promoting. Then, on the same holdout, a challenger retrained from scratch (for
   comparison, not registered) and a deliberately worse one (one epoch, two hidden units,
   older data) that the loop judges against the new champion.

    .venv/bin/python bench/learning.py [--customers 50000] [--epochs 10]
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from datetime import time as day_start
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import report, simulated_shop_in_postgres
from service.config import Settings
from service.db.session import make_engine, make_session_factory
from service.jobs import repository as job_rows
from service.jobs import service as jobs
from service.learning.evaluation import Holdout, holdout_metrics
from service.learning.schemas import Trigger
from service.learning.service import learn
from service.ml.training import TrainConfig, train
from service.model_versions import service as registry
from service.simulator.config import Shift, ShopConfig
from service.training import data

SHIFT_DAY, CHAMPION_DAY, HOLDOUT_DAYS = 380, 310, 60
KEYS = ("normalized_gini", "decile_mape", "aggregate_revenue_error", "mae")


def _brief(metrics: dict[str, Any]) -> dict[str, float]:
    return {key: round(float(metrics[key]), 4) for key in KEYS}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=50_000)
    parser.add_argument("--epochs", type=int, default=10, help="CLV_LEARNING_EPOCHS")
    args = parser.parse_args()
    config = ShopConfig(
        customers=args.customers,
        days=540,
        horizon_days=90,
        seed=42,
        shift=Shift(day=SHIFT_DAY, channel="organic", factor=0.25),
        seasons=False,
    )
    start = datetime.combine(config.start, day_start(), UTC)
    end = start + timedelta(days=config.days) - timedelta(seconds=1)
    training = TrainConfig(horizon_days=90, partial_step_days=30)
    with simulated_shop_in_postgres(config) as shop:
        settings = Settings(
            database_url=shop.url, model_dir=shop.folder / "models", learning_epochs=args.epochs
        )
        engine = make_engine(settings)
        factory = make_session_factory(engine)
        with factory() as session:
            log = data.event_log(session, end)
            profiles, sources = data.profiles(session, settings)
        began = time.perf_counter()
        champion = train(log, profiles, sources, start + timedelta(days=CHAMPION_DAY), training)
        champion_seconds = time.perf_counter() - began
        with factory() as session, session.begin():
            original = registry.register(
                session, settings.model_dir, champion, champion.report.validation.to_json(), "bench"
            ).version
            rescore = job_rows.active_job(session, "rescore")
            if rescore is not None:  # scores are not what this measures
                jobs.cancel(session, rescore.id)
        before = Holdout.ending(start + timedelta(days=SHIFT_DAY), HOLDOUT_DAYS)
        before_metrics = holdout_metrics({"champion": champion}, log, profiles, sources, before)

        began = time.perf_counter()
        warm = learn(factory, settings, trigger=Trigger.demand, actor="bench", as_of=end)
        learn_seconds = time.perf_counter() - began

        after = Holdout.ending(end, HOLDOUT_DAYS)
        retrained = train(
            log, profiles, sources, after.start, replace(training, epochs=args.epochs)
        )
        retrain_metrics = holdout_metrics({"retrain": retrained}, log, profiles, sources, after)
        worse = train(
            log,
            profiles,
            sources,
            start + timedelta(days=250),
            TrainConfig(horizon_days=90, epochs=1, hidden=2, cutoffs=1, sequence_length=4),
        )
        with factory() as session, session.begin():
            worse_version = registry.register(session, settings.model_dir, worse, {}, "bench")
        refused = learn(
            factory,
            settings,
            trigger=Trigger.demand,
            actor="bench",
            as_of=end,
            challenger=worse_version.version,
        )
        engine.dispose()
    assert warm.champion_metrics
    assert warm.challenger_metrics
    assert warm.baseline_metrics
    assert refused.challenger_metrics
    report(
        "learning",
        {
            "customers": args.customers,
            "events": shop.events,
            "champion_training_seconds": round(champion_seconds, 1),
            "learning_job_seconds": round(learn_seconds, 1),
            "before_shift_champion": _brief(before_metrics["champion"]),
            "before_shift_btyd": _brief(before_metrics["btyd"]),
            "after_shift_champion": _brief(warm.champion_metrics),
            "after_shift_challenger_warm": _brief(warm.challenger_metrics),
            "after_shift_challenger_retrain": _brief(retrain_metrics["retrain"]),
            "after_shift_btyd": _brief(warm.baseline_metrics),
            "after_shift_worse_challenger": _brief(refused.challenger_metrics),
            "warm_decision": f"{warm.outcome}: " + "; ".join(warm.reasons),
            "worse_decision": f"{refused.outcome}: " + "; ".join(refused.reasons),
            "original_champion": original,
        },
    )


if __name__ == "__main__":
    main()
