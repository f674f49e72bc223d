"""The partitioned event store: what reading and dropping months cost, against one partition.

Simulates a shop (default 20,000 customers over 730 days, about 25 months of events) and loads
it into two scratch PostgreSQL databases at the same revision: one with a partition per month
(as workers and imports leave it), one with every event in the default partition (one heap, as
before partitioning). Then times, on each, what the service's hot reads run (the same code):

- scoring's read: each customer's latest 32 events, for 1,000 random customers a call;
- a worker's batch: the 20,000 newest events by sequence number, with their time span;
- a customer's activity (counts by type: no time bound, so every month is searched);
- orders in the last 30 days (the accuracy and forecast windows);
- training's read: every event up to 180 days before the end;

(p50 of ``--repeats`` runs each, and the ratio partitioned / one partition), and what the
retention costs: dropping the oldest month's partition against deleting the same rows.

    .venv/bin/python bench/partitions.py [--customers 20000] [--days 730] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import text
from sqlalchemy.orm import Session

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import (
    copy_shop_events,
    libpq_url,
    report,
    scratch_postgres,
    timed,
)
from service.config import Settings
from service.customers import repository as customers
from service.db.session import make_engine, make_session_factory
from service.events import partitions
from service.events import repository as events
from service.portrait import repository as portrait
from service.portrait.service import rebuild
from service.simulator.config import ShopConfig
from service.simulator.files import write_shop

BATCH = 20_000
NEWEST = text("SELECT seq, occurred_at FROM events ORDER BY occurred_at DESC LIMIT :limit")
"""A worker's batch as live ingestion queues it: the ``BATCH`` latest events (the shop was
loaded in customer order, so its sequence numbers do not follow time as live ones do)."""


def load(url: str, folder: Path, partitioned: bool) -> dict[str, float]:
    """COPY the shop's events in, their ids into event_ids, the portrait built from them, and
    (``partitioned``) the events moved into monthly partitions as an import's end does; then
    ANALYZE."""
    received = datetime.now(UTC)
    copied = copy_shop_events(url, folder, received)
    engine = make_engine(Settings(_env_file=None, database_url=url))  # type: ignore[call-arg]
    factory = make_session_factory(engine)
    with factory() as session, session.begin():
        rebuild(session)
    started = time.perf_counter()
    if partitioned:
        partitions.maintain(factory, received, None)
    moved = time.perf_counter() - started
    engine.dispose()
    with psycopg.connect(libpq_url(url), autocommit=True) as connection:
        connection.execute("VACUUM ANALYZE events, customer_days")
    return {"copy_s": round(copied, 1), "partition_s": round(moved, 1)}


def reads(url: str, ids: list[str], end: datetime, repeats: int) -> dict[str, float]:
    engine = make_engine(Settings(_env_file=None, database_url=url))  # type: ignore[call-arg]
    rng = random.Random(3)
    try:
        with Session(engine) as session:
            newest = session.execute(NEWEST, {"limit": BATCH}).all()
            seqs = [seq for seq, _ in newest]
            first, last = min(t for _, t in newest), max(t for _, t in newest)
            runs: dict[str, Callable[[], object]] = {
                "scoring_read_1000_customers": lambda: portrait.recent_events(
                    session, rng.sample(ids, 1000), until=end, count=32
                ),
                "worker_batch_20000_events": lambda: list(
                    portrait.event_frames_by_seq(session, seqs, first, last)
                ),
                "customer_activity": lambda: customers.event_stats(session, rng.choice(ids)),
                "orders_last_30_days": lambda: events.orders_in(
                    session, end - timedelta(days=30), end
                ),
                "training_read_to_end_minus_180_days": lambda: sum(
                    len(frame)
                    for frame, _ in portrait.event_frames(session, until=end - timedelta(days=180))
                ),
            }
            return {name: timed(run, repeats) for name, run in runs.items()}
    finally:
        engine.dispose()


def retention(url: str, partitioned: bool) -> tuple[float, int]:
    """Seconds to remove the oldest month's events, and how many: DROP of its partition, or
    DELETE of its rows from the one partition."""
    with psycopg.connect(libpq_url(url), autocommit=True) as connection:
        oldest = connection.execute("SELECT min(occurred_at) FROM events").fetchone()
        assert oldest is not None
        month = partitions.month_start(oldest[0])
        end = partitions.add_months(month, 1)
        count = connection.execute(
            "SELECT count(*) FROM events WHERE occurred_at >= %s AND occurred_at < %s",
            [month, end],
        ).fetchone()
        started = time.perf_counter()
        if partitioned:
            connection.execute(f"DROP TABLE {partitions.name(month)}")
        else:
            connection.execute(
                "DELETE FROM events WHERE occurred_at >= %s AND occurred_at < %s", [month, end]
            )
        return time.perf_counter() - started, int(count[0]) if count else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--days", type=int, default=730)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    end = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    config = ShopConfig(
        customers=args.customers, days=args.days, start=(end - timedelta(days=args.days)).date()
    )
    result: dict[str, Any] = {"customers": args.customers, "days": args.days}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "shop"
        write_shop(config, folder)
        shop = json.loads((folder / "shop.json").read_text())
        result["events"] = shop["counts"]["events"]
        ids = sorted({json.loads(line)["customer_id"] for line in (folder / "events.jsonl").open()})
        figures: dict[bool, dict[str, float]] = {}
        for partitioned in (True, False):
            layout = "monthly" if partitioned else "one_partition"
            with scratch_postgres() as url:
                loaded = load(url, folder, partitioned)
                with psycopg.connect(libpq_url(url)) as connection:
                    found = connection.execute(
                        "SELECT count(*) FROM pg_inherits WHERE inhparent = 'events'::regclass"
                    ).fetchone()
                result[f"{layout}: partitions"] = found[0] if found else 0
                result[f"{layout}: load"] = loaded
                figures[partitioned] = reads(url, ids, end, args.repeats)
                seconds, rows = retention(url, partitioned)
                verb = "DROP TABLE" if partitioned else "DELETE"
                result[f"{layout}: oldest month removed"] = (
                    f"{verb} {rows:,} rows {seconds * 1000:.0f} ms"
                )
        for name in figures[True]:
            monthly, single = figures[True][name], figures[False][name]
            result[name] = (
                f"monthly {monthly * 1000:.1f} ms, one partition {single * 1000:.1f} ms "
                f"(ratio {monthly / single:.2f})"
            )
    report("partitions", result)


if __name__ == "__main__":
    main()
