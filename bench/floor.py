"""Scores that move the way people expect: what an order does to each customer's expected orders
with and without the floor at their prefixes (``service.ml.prefixes``), and what the floor costs.

1. Simulates a shop whose history ends yesterday (default 10,000 customers over 540 days), loads
   it into a scratch PostgreSQL database and trains the champion (`clv train`, 365 days).
2. Every customer with an order gets one more now, of their own average value, a third of it
   and three times it; each network-ranked candidate (deep, blend) is scored before and after,
   from every event, with the network alone (no floor) and as served (floored): how many
   customers' expected orders rose, stayed and fell, the worst fall, and how many had their clv
   fall by more than their expected order value did.
3. The cost where the network serves: computed scores (``scoring.engine.compute``: the stored
   aggregates and latest events read, features, network), floored against the same model with
   a BTYD model serving (no floor to build), in batches of 1,000 customers (a rescoring job's
   and the worker's read) and one customer at a time (a request), each in the same run; and
   where a batch's time goes, by stage (``bench/score.py``'s ``one_computation``).

    .venv/bin/python bench/floor.py [--customers 10000] [--epochs N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import report, scored_shop, simulated_shop_in_postgres, timed
from bench.score import one_computation
from service.db.session import make_engine, make_session_factory
from service.ml.clv_model import ClvModel
from service.ml.examples import EventLog, Examples
from service.ml.selection import BTYD_CANDIDATES
from service.portrait import repository as portrait
from service.portrait import service as portrait_service
from service.scoring import engine
from service.scoring.service import Scorer
from service.simulator.config import ShopConfig
from service.training import data

DAYS, HORIZON = 540, 365


def unfloored(examples: Examples) -> Examples:
    return replace(examples, earlier=None)


def moves(before: pd.DataFrame, after: pd.DataFrame) -> dict[str, Any]:
    """How the customers' expected orders moved, and whose clv fell beyond their order value."""
    orders = after["expected_orders"] / before["expected_orders"] - 1
    value = after["expected_order_value"] / before["expected_order_value"] - 1
    clv = after["clv"] / before["clv"] - 1
    rounding = 1e-6  # the network's float32 (a customer scored beside other rows)
    return {
        "rose": int((orders > rounding).sum()),
        "stayed": int((orders.abs() <= rounding).sum()),
        "fell": int((orders < -rounding).sum()),
        "worst": round(float(orders.min()), 4),
        "clv_fell_beyond_order_value": int((clv < value - rounding).sum()),
    }


def monotonicity(model: ClvModel, log: EventLog, profiles: Any, sources: Any) -> dict[str, Any]:
    now = datetime.now(UTC)
    examples = model.examples(log, profiles, sources, now)
    buyers = examples.customers[examples.portrait["has_purchased"].to_numpy() > 0]
    result: dict[str, Any] = {"customers_with_an_order": len(buyers)}
    assert model.serving is not None
    for share, label in ((1.0, "their_average"), (1 / 3, "a_third"), (3.0, "three_times")):
        average = examples.portrait.loc[buyers, "average_order_value"].to_numpy()
        with_orders = log.with_orders(buyers, average * share, now)
        more = model.examples(with_orders, profiles, sources, now)
        for served in ("deep", "blend"):
            candidate = replace(model, serving=replace(model.serving, served=served))
            for floor, prepare in (("network_alone", unfloored), ("served", lambda e: e)):
                before = candidate.predict(prepare(examples)).loc[buyers]
                after = candidate.predict(prepare(more)).loc[buyers]
                result[f"{served}_{floor}_{label}"] = moves(before, after)
    floored = replace(model, serving=replace(model.serving, served="deep"))
    raw = floored.network_clv(examples)
    served = floored.predict(examples)["clv"].to_numpy()
    bought = examples.portrait["has_purchased"].to_numpy() > 0
    result["deep_raised_by_the_floor"] = int((served > raw * (1 + 1e-9))[bought].sum())
    result["deep_total_served_over_network"] = round(float(served.sum() / raw.sum()), 4)
    return result


def cost(factory: Any, settings: Any, model: ClvModel, customers: list[str]) -> dict[str, Any]:
    assert model.serving is not None
    btyd = next(name for name in model.baselines if name in BTYD_CANDIDATES)
    models = {
        "floored": replace(model, serving=replace(model.serving, served="deep")),
        "btyd_serving": replace(model, serving=replace(model.serving, served=btyd)),
    }
    batch, singles = customers[:1000], customers[1000:1100]
    result: dict[str, Any] = {}
    with factory() as session:
        ordered = portrait_service.latest_orders(session, batch, datetime.now(UTC)).events
        result["batch_customers_with_an_order_in_the_day"] = ordered["customer_id"].nunique()
        for name, chosen in models.items():

            def compute(ids: list[str], chosen: ClvModel = chosen) -> None:
                engine.compute(
                    session, settings, chosen, ids, as_of=datetime.now(UTC),
                    horizon_days=chosen.horizon_days, explain=False, purpose="refresh",
                )  # fmt: skip

            def one_at_a_time(compute: Any = compute) -> None:
                for customer in singles:
                    compute([customer])

            seconds = timed(lambda: compute(batch), 5)
            result[f"{name}_batch_1000_customers_per_s"] = round(len(batch) / seconds)
            single = timed(one_at_a_time, 3) / len(singles)
            result[f"{name}_one_customer_ms"] = round(single * 1000, 2)
        for name, chosen in models.items():
            runs = [one_computation(settings, factory, chosen, batch) for _ in range(3)]
            for stage in runs[0]:
                median = statistics.median(run[stage] for run in runs)
                result[f"{name}_batch_1000_{stage}_ms"] = round(median * 1000, 1)
    result["batch_floored_over_btyd_time"] = round(
        result["btyd_serving_batch_1000_customers_per_s"]
        / result["floored_batch_1000_customers_per_s"],
        2,
    )
    result["one_customer_floored_over_btyd_time"] = round(
        result["floored_one_customer_ms"] / result["btyd_serving_one_customer_ms"], 2
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--epochs", type=int, default=None, help="upper bound for clv train")
    args = parser.parse_args()
    first_day = datetime.now(UTC).date() - timedelta(days=DAYS)
    config = ShopConfig(customers=args.customers, days=DAYS, horizon_days=HORIZON, start=first_day)
    with simulated_shop_in_postgres(config) as shop:
        scored = scored_shop(shop, HORIZON, args.epochs)
        settings = scored.settings
        db = make_engine(settings)
        factory = make_session_factory(db)
        with factory() as session:
            _, model = Scorer(settings).champion(session)
            now = datetime.now(UTC)
            frames = list(portrait.event_frames(session, until=now))
            profiles, sources = data.profiles(session, settings, scored.customers)
        log = EventLog.from_frames(frames)
        result: dict[str, Any] = {
            "customers": len(scored.customers),
            "events": shop.events,
            "served_by_training": model.serving.served if model.serving else None,
        }
        result |= monotonicity(model, log, profiles, sources)
        result |= cost(factory, settings, model, scored.customers)
        db.dispose()
    report("floor", result)


if __name__ == "__main__":
    main()
