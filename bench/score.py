"""Scoring: latency over real HTTP, explanation cost against shap's GradientExplainer, batch
throughput against the BTYD formula, event-to-fresh-score latency, and what int8 changes.

1. Simulates a shop whose history ends yesterday (default 12,000 customers over 540 days),
   loads it into a scratch PostgreSQL database, trains the champion (`clv train`, 365 days) and
   runs its rescoring job: every customer's stored score (target >= 2,000 customers/s), then
   their attributions as idle workers compute them (target >= 500 customers/s).
2. Over HTTP, against `clv serve` as it starts by default (one API process, one worker
   process), one request at a time on a keep-alive connection, random customers:
   - a stored score without explanation (target p99 <= 10 ms) and with it (target <= 20 ms);
   - a score computed for the request with a fresh explanation (another horizon);
   - event to fresh score: POST an order, poll the score until it describes a moment after the
     order (target p99 <= 1 s).
3. In-process, on the same model and customers:
   - a fresh explanation of one customer, ours against `shap.GradientExplainer` with its
     default 200 samples over a background of 100 random customers: p50 time, the ratio, and
     both additivity errors |base + sum - clv| / max(clv, 1);
   - batch throughput, customers/s: `POST /v1/clv/batch`'s service for 10,000 stored scores;
     10,000 scores computed as of now (stored aggregates and latest events read, features,
     network: target >= 20,000/s);
     the network alone (float and int8) next to the BTYD formula on the same customers; and
     where a computed score's time goes, by stage, for 5,000 customers in one call.
4. int8: a backtest at T - 180 days over 180 days, float against int8 on the same customers
   (run before the HTTP part, whose orders would otherwise land in its outcome window).

    .venv/bin/python bench/score.py [--customers 12000] [--requests 2000] [--epochs N]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx2 as httpx

from bench._common import (
    includes,
    percentile,
    probe_order,
    report,
    running_server,
    scored_shop,
    simulated_shop_in_postgres,
)
from service.config import Settings
from service.db.session import make_engine, make_session_factory
from service.ml.clv_model import ClvModel
from service.ml.examples import EventLog, Examples, RecentEvents
from service.ml.explain import ADDITIVITY_TOLERANCE
from service.ml.losses import ziln_mean
from service.portrait import repository as portrait
from service.portrait import service as portrait_service
from service.scoring import engine as scoring_engine
from service.scoring import service as scoring
from service.scoring.schemas import BatchScoreRequest
from service.simulator.config import ShopConfig
from service.training import backtest, data

DAYS = 540
HORIZON = 365


def timed(call: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = call()
    return time.perf_counter() - started, result


def latencies_ms(client: httpx.Client, paths: list[str]) -> dict[str, float]:
    times = []
    for path in paths:
        started = time.perf_counter()
        response = client.get(path)
        times.append((time.perf_counter() - started) * 1000)
        response.raise_for_status()
    return {"p50_ms": round(percentile(times, 50), 2), "p99_ms": round(percentile(times, 99), 2)}


def event_to_fresh_score(client: httpx.Client, customers: list[str], samples: int) -> list[float]:
    """Seconds from sending an order to the first read of a score that includes it."""
    seconds = []
    for number in range(samples):
        customer = random.choice(customers)
        sent = datetime.now(UTC)
        started = time.perf_counter()
        order = probe_order(f"bench-order-{number}-{sent.timestamp()}", customer, sent)
        client.post("/v1/events", json={"events": [order]}).raise_for_status()
        while time.perf_counter() - started < 30:
            if includes(client.get(f"/v1/customers/{customer}/clv").json(), sent):
                break
            time.sleep(0.005)
        seconds.append(time.perf_counter() - started)
    return seconds


def examples_of(
    session: Any, settings: Settings, model: ClvModel, customers: list[str]
) -> Examples:
    now = datetime.now(UTC)
    frames = list(portrait.event_frames(session, until=now, customer_ids=customers))
    profiles, sources = data.profiles(session, settings, customers)
    return model.examples(EventLog.from_frames(frames), profiles, sources, now)


def _one(examples: Examples, row: int) -> Examples:
    return examples.subset(np.arange(len(examples.customers)) == row)  # its prefixes too


def compare_explainers(model: ClvModel, examples: Examples, samples: int) -> dict[str, Any]:
    """Ours (one customer at a time) against shap.GradientExplainer with default samples."""
    import shap

    class Score(torch.nn.Module):
        def forward(self, sequence: torch.Tensor, tabular: torch.Tensor) -> torch.Tensor:
            shift = torch.tensor([0.0, model.log_calibration, 0.0])
            return ziln_mean(model.net(sequence, tabular) + shift)[:, None]

    rng = np.random.default_rng(0)
    sequences = torch.as_tensor(examples.sequences)
    tabular = model.tabular_tensor(examples.tabular)
    background = rng.choice(len(tabular), 100, replace=False)
    plain = shap.GradientExplainer(Score(), [sequences[background], tabular[background]])
    with torch.no_grad():
        plain_base = float(Score()(sequences[background], tabular[background]).mean())
    clv = model.predict(examples)["clv"].to_numpy()
    ours_s, ours_err, plain_s, plain_err = [], [], [], []
    for row in rng.choice(len(tabular), samples, replace=False):
        seconds, attributions = timed(lambda row=row: model.explain(_one(examples, row)))
        ours_s.append(seconds)
        ours_err.append(abs(attributions.totals()[0] - clv[row]) / max(clv[row], 1.0))
        seconds, values = timed(
            lambda row=row: plain.shap_values([sequences[row : row + 1], tabular[row : row + 1]])
        )
        plain_s.append(seconds)
        total = plain_base + sum(float(np.sum(v)) for v in values)
        plain_err.append(abs(total - clv[row]) / max(clv[row], 1.0))
    ours_p50, plain_p50 = percentile(ours_s, 50), percentile(plain_s, 50)
    return {
        "explain_ours_p50_ms": round(ours_p50 * 1000, 2),
        "explain_gradientexplainer_p50_ms": round(plain_p50 * 1000, 2),
        "explain_speedup": round(plain_p50 / ours_p50, 2),
        "explain_ours_additivity_error_mean": round(float(np.mean(ours_err)), 4),
        "explain_ours_additivity_error_max": round(float(np.max(ours_err)), 4),
        "explain_gradientexplainer_additivity_error_mean": round(float(np.mean(plain_err)), 4),
        "explain_gradientexplainer_additivity_error_max": round(float(np.max(plain_err)), 4),
        "explain_stated_tolerance": ADDITIVITY_TOLERANCE,
    }


def throughput(
    settings: Settings, factory: Any, model: ClvModel, customers: list[str]
) -> dict[str, Any]:
    """Customers/s of the batch service (stored scores), of scores computed as of now, and of
    the network alone (float, int8) next to the BTYD formula, on the same 10,000 customers."""
    chosen = customers[:10_000]
    scorer = scoring.Scorer(settings)
    with factory() as session:
        scoring.batch(session, scorer, BatchScoreRequest(customer_ids=chosen[:100]))  # warm
        stored_s, answer = timed(
            lambda: scoring.batch(session, scorer, BatchScoreRequest(customer_ids=chosen))
        )
        assert len(answer.scores) == len(chosen)
        computed_s, _ = timed(
            lambda: scoring_engine.compute(
                session,
                settings,
                model,
                chosen,
                as_of=datetime.now(UTC),
                horizon_days=HORIZON,
                explain=False,
                purpose="request",
            )
        )
        examples = examples_of(session, settings, model, chosen)
    quantized = model.quantized()
    model.logits(examples)  # warm
    quantized.logits(examples)
    network_s = min(timed(lambda: model.logits(examples))[0] for _ in range(3))
    int8_s = min(timed(lambda: quantized.logits(examples))[0] for _ in range(3))
    btyd_s = min(timed(lambda: model.btyd.predict(examples.portrait, HORIZON))[0] for _ in range(3))
    n = len(chosen)
    return {
        "batch_customers": n,
        "batch_stored_customers_per_s": round(n / stored_s),
        "batch_computed_customers_per_s": round(n / computed_s),
        "network_float_customers_per_s": round(n / network_s),
        "network_int8_customers_per_s": round(n / int8_s),
        "int8_network_speedup": round(network_s / int8_s, 2),
        "btyd_formula_customers_per_s": round(n / btyd_s),
        "network_vs_btyd_formula_ratio": round(btyd_s / network_s, 2),
    }


def computed_stages(
    settings: Settings, factory: Any, model: ClvModel, customers: list[str], runs: int = 3
) -> dict[str, Any]:
    """Where a computed score's time goes, 5,000 customers in one call, median ms of ``runs``:
    the stored aggregates corrected to the moment, each customer's latest events, their
    attributes, the features and the model."""
    stages: dict[str, list[float]] = {}
    for _ in range(runs):
        for stage, seconds in one_computation(settings, factory, model, customers[:5_000]).items():
            stages.setdefault(stage, []).append(seconds * 1000)
    return {
        f"computed_5000_{stage}_ms": round(statistics.median(values), 1)
        for stage, values in stages.items()
    }


def one_computation(
    settings: Settings, factory: Any, model: ClvModel, chosen: list[str]
) -> dict[str, float]:
    """Seconds per stage of computing ``chosen``'s scores now (``scoring.engine.compute``)."""
    clock, timings = time.perf_counter, {}
    with factory() as session:
        now = datetime.now(UTC)
        started = clock()
        activity = portrait_service.activity_at(session, chosen, now)
        timings["aggregates"], started = clock() - started, clock()
        orders = portrait_service.latest_orders(session, chosen, now) if model.floors else None
        timings["latest_orders"], started = clock() - started, clock()
        extra = orders.most if orders is not None else 0  # as the engine reads
        events, categories = portrait.recent_events(
            session, chosen, until=now, count=model.sequence_length + extra
        )
        timings["latest_events"], started = clock() - started, clock()
        profiles, sources = data.profiles(session, settings, chosen)
        timings["attributes"], started = clock() - started, clock()
    recent = RecentEvents(events, categories)
    examples = model.examples_from_portrait(activity, recent, profiles, sources, now, orders)
    timings["features"], started = clock() - started, clock()
    model.predict(examples)
    timings["model"] = clock() - started
    return timings


def rescoring(customers: int, scores_s: float, attributions_s: float) -> dict[str, Any]:
    """A new champion's rescoring job (scores only), then the attributions of every score as idle
    workers compute them, customers/s each, the ratio between them, and the time the job would
    take for 100,000 customers at the rate measured."""
    scores_rate, attributions_rate = customers / scores_s, customers / attributions_s
    return {
        "rescore_scores_customers_per_s": round(scores_rate),
        "rescore_attributions_customers_per_s": round(attributions_rate),
        "rescore_scores_to_attributions_ratio": round(scores_rate / attributions_rate, 2),
        "rescore_scores_100k_customers_s_at_this_rate": round(100_000 / scores_rate, 1),
    }


def int8_backtest(factory: Any, settings: Settings, end: datetime, out: Path) -> dict[str, Any]:
    as_of = end - timedelta(days=180)
    result = backtest.backtest(factory, settings, as_of=as_of, horizon_days=180, out=out)
    buyers = result["populations"]["customers_with_an_order"]
    keys = ("normalized_gini", "decile_mape", "aggregate_revenue_error")
    return {
        f"backtest_{name}_{key}": round(buyers[name][key], 4)
        for name in ("served", "served_int8", "btyd")
        for key in keys
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=12_000)
    parser.add_argument("--requests", type=int, default=2_000)
    parser.add_argument("--freshness-samples", type=int, default=100)
    parser.add_argument("--explain-samples", type=int, default=100)
    parser.add_argument("--device", default="cpu", help="CLV_DEVICE for the model")
    parser.add_argument(
        "--epochs", type=int, default=None, help="upper bound for clv train (a large shop)"
    )
    args = parser.parse_args()
    random.seed(0)
    first_day = datetime.now(UTC).date() - timedelta(days=DAYS)
    config = ShopConfig(customers=args.customers, days=DAYS, horizon_days=HORIZON, start=first_day)

    with simulated_shop_in_postgres(config, args.device) as shop:
        scored = scored_shop(shop, HORIZON, args.epochs)
        quiet = {**shop.env, "CLV_LOG_LEVEL": "WARNING"}
        settings, customers, key = scored.settings, scored.customers, scored.key
        engine = make_engine(settings)
        factory = make_session_factory(engine)
        result: dict[str, Any] = {
            "customers": len(customers),
            "events": shop.events,
            "device": args.device,
            "train_seconds": round(scored.train_seconds, 1),
            **rescoring(len(customers), scored.rescore_seconds, scored.explain_seconds),
        }
        # Before the HTTP part, whose orders would land in the backtest's outcome window.
        result |= int8_backtest(factory, settings, datetime.now(UTC), shop.folder / "backtest")
        sample = [random.choice(customers) for _ in range(args.requests)]
        with (
            running_server(shop.url, extra_env=quiet) as (base, _),
            httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}) as client,
        ):
            latencies_ms(client, [f"/v1/customers/{c}/clv" for c in sample[:100]])  # warm
            plain = latencies_ms(client, [f"/v1/customers/{c}/clv" for c in sample])
            explained = latencies_ms(
                client,
                [f"/v1/customers/{c}/clv?explain=true" for c in sample[: args.requests // 2]],
            )
            fresh = latencies_ms(
                client,
                [f"/v1/customers/{c}/clv?explain=true&horizon_days=180" for c in sample[:200]],
            )
            freshness = event_to_fresh_score(client, customers, args.freshness_samples)
        result |= {
            "http_stored_score_p50_ms": plain["p50_ms"],
            "http_stored_score_p99_ms": plain["p99_ms"],
            "http_stored_explained_p50_ms": explained["p50_ms"],
            "http_stored_explained_p99_ms": explained["p99_ms"],
            "http_fresh_explanation_p50_ms": fresh["p50_ms"],
            "http_fresh_explanation_p99_ms": fresh["p99_ms"],
            "event_to_fresh_score_p50_s": round(percentile(freshness, 50), 3),
            "event_to_fresh_score_p99_s": round(percentile(freshness, 99), 3),
        }
        scorer = scoring.Scorer(settings)
        with factory() as session:
            _, model = scorer.champion(session)
            chosen = random.sample(customers, min(2_000, len(customers)))
            examples = examples_of(session, settings, model, chosen)
        result |= compare_explainers(model, examples, args.explain_samples)
        result |= throughput(settings, factory, model, customers)
        result |= computed_stages(settings, factory, model, customers)
        engine.dispose()
    report("score", result)


if __name__ == "__main__":
    main()
