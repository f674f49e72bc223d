"""Portrait features at scale: all customers as of one cut-off, and the incremental update.

1. Simulates a shop (default 100,000 customers over two years, about 3M events) and loads its
   events (COPY) and profiles into a scratch PostgreSQL database.
2. In a child process (so its peak memory is its own): streams every event up to the cut-off
   from the database, aggregates it, fits the feature pipeline (category vocabulary, TF-IDF + SVD
   text embedding, profile encoding) and computes every customer's features. Prints wall time
   and peak RSS; targets are <= 60 s and <= 4 GiB.
3. The incremental update: batches of 1,000 events (late and out of order) are ingested and
   the worker applies each (claim, read back, aggregate, add, commit); prints p50/p99 per batch.

    .venv/bin/python bench/features.py [--customers 100000] [--batches 200]
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import load_shop, percentile, report, scratch_postgres
from service.config import Settings
from service.customers import service as customers
from service.db.session import make_engine, make_session_factory
from service.events import service as events_service
from service.events.schemas import LENIENT_EVENT
from service.events.service import IngestRules
from service.events.worker import process_pending
from service.ml.activity import Activity, aggregate_frames, day_number
from service.portrait import repository as portrait
from service.privacy import PiiHasher
from service.simulator.config import ShopConfig
from service.simulator.files import write_shop

START = date(2024, 1, 1)


def compute(url: str, as_of: datetime) -> dict[str, Any]:
    """The measured work: every customer's features as of ``as_of`` (run in a child process)."""
    from service.ml.portrait import FeaturePipeline

    settings = Settings(_env_file=None, database_url=url)  # type: ignore[call-arg]
    engine = make_engine(settings)
    started = time.perf_counter()
    with make_session_factory(engine)() as session:
        frames = portrait.event_frames(session, until=as_of)  # chunk by chunk: bounded memory
        activity = Activity.combine([aggregate_frames(e, i) for e, i in frames])
        policy = customers.ProfilePolicy.from_settings(settings, PiiHasher.from_settings(settings))
        profiles, sources = customers.all_profiles(session, policy)
    loaded = time.perf_counter()
    pipeline = FeaturePipeline().fit(activity, profiles, sources)
    table = pipeline.transform(activity, profiles, sources, day_number(as_of))
    finished = time.perf_counter()
    engine.dispose()
    return {
        "customers": len(table),
        "features": table.shape[1],
        "seconds_total": round(finished - started, 1),
        "seconds_read_and_aggregate": round(loaded - started, 1),
        "seconds_fit_and_transform": round(finished - loaded, 1),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


def incremental(url: str, folder: Path, batches: int, seed: int = 1) -> dict[str, float]:
    """The worker's cost per 1,000-event batch: each batch (a random sample of the shop's events
    under new ids, so late and out of order) is ingested, then applied and committed, timed."""
    lines = (folder / "events.jsonl").open().readlines()
    chosen = random.Random(seed).sample(lines, min(len(lines), batches * 1000))
    candidates = []
    for line in chosen:
        raw = json.loads(line)
        raw["event_id"] = "again-" + raw["event_id"]
        candidates.append(LENIENT_EVENT.validate_python(raw))
    settings = Settings(_env_file=None, database_url=url)  # type: ignore[call-arg]
    engine = make_engine(settings)
    factory = make_session_factory(engine)
    rules = IngestRules.from_settings(settings, PiiHasher.from_settings(settings))
    timings = []
    for i in range(0, len(candidates), 1000):
        with factory() as session, session.begin():
            events_service.ingest(session, candidates[i : i + 1000], rules, max_events=1000)
        started = time.perf_counter()
        process_pending(factory, 1000)
        timings.append((time.perf_counter() - started) * 1000)
    engine.dispose()
    return {
        "batches": len(timings),
        "batch_p50_ms": round(percentile(timings, 50), 1),
        "batch_p99_ms": round(percentile(timings, 99), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--batches", type=int, default=200)
    parser.add_argument("--compute", help=argparse.SUPPRESS)  # child mode: a database URL
    args = parser.parse_args()
    config = ShopConfig(customers=args.customers, days=730, horizon_days=30, start=START)
    as_of = datetime.combine(START, datetime.min.time(), UTC) + timedelta(days=config.days)
    if args.compute:
        print(json.dumps(compute(args.compute, as_of)))
        return

    with tempfile.TemporaryDirectory() as tmp, scratch_postgres() as url:
        folder = Path(tmp)
        started = time.perf_counter()
        write_shop(config, folder)
        simulated = time.perf_counter() - started
        events = load_shop(url, folder)
        child = subprocess.run(
            [sys.executable, __file__, "--compute", url], capture_output=True, text=True,
            check=True,
        )  # fmt: skip
        result = {
            "customers": args.customers,
            "events": events,
            "simulate_seconds": round(simulated, 1),
            **{f"all_features_{k}": v for k, v in json.loads(child.stdout).items()},
            **{f"incremental_{k}": v for k, v in incremental(url, folder, args.batches).items()},
        }
    report("features", result)


if __name__ == "__main__":
    main()
