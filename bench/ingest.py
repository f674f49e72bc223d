"""Ingestion throughput end to end, against a raw COPY of the same rows in the same run.

The service runs as `clv serve` on a scratch PostgreSQL database; this process is the client,
sending the events of a simulated shop, in time order, as pre-serialised batches over a few
keep-alive connections. Then the same rows are COPYed straight into the same (emptied) table:
the ratio says how close the API gets to the database's own bulk path. It also measures how long
the portrait takes to catch up after the last acknowledged batch (the workers apply events
behind ingestion), batch latency percentiles and the server's peak RSS. The machine is noisy,
so it runs several rounds and prints the median of each figure with its range.

    .venv/bin/python bench/ingest.py [--events 200000] [--batch 1000] [--connections 4]
                                     [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx2 as httpx
import psycopg
from sqlalchemy.orm import Session

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import (
    copy_events,
    event_row,
    libpq_url,
    peak_rss_mib,
    percentile,
    report,
    running_server,
    scratch_postgres,
)
from service.auth import service as auth
from service.config import Settings
from service.db.session import make_engine, make_session_factory
from service.events import partitions
from service.events.worker import drain
from service.simulator.config import ShopConfig
from service.simulator.shop import Shop


def make_events(count: int, seed: int = 7) -> list[dict[str, Any]]:
    """``count`` events of a simulated shop (clv simulate), in time order, as a live storefront
    sends them: sessions of views, cart additions and orders, many customers interleaved."""
    customers = count // 25 + 1000  # about 31 observed events per customer
    events: list[dict[str, Any]] = []
    for chunk in Shop(ShopConfig(customers=customers, seed=seed)).chunks():
        events.extend(chunk.events)
        if len(events) >= count * 1.1:
            break
    events.sort(key=lambda event: event["occurred_at"])
    return events[:count]


def partition_months(session: Session, events: list[dict[str, Any]]) -> None:
    """A partition for each month the events span, as a shop running for that long has
    (``service.events.partitions``), so events are read across that many partitions."""
    month = partitions.month_start(datetime.fromisoformat(events[0]["occurred_at"]))
    last, have = datetime.fromisoformat(events[-1]["occurred_at"]), set(partitions.months(session))
    while month <= last:
        if month not in have:
            partitions.create(session, month)
        month = partitions.add_months(month, 1)


def send_all(
    base: str, token: str, bodies: list[bytes], connections: int
) -> tuple[float, list[float], int]:
    """Send the bodies over ``connections`` keep-alive connections.

    Returns the wall time, each batch's latency and the number of events accepted."""
    latencies: list[float] = []
    accepted = 0
    lock = threading.Lock()
    queue = list(reversed(bodies))
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    def worker() -> None:
        nonlocal accepted
        with httpx.Client(base_url=base, headers=headers, timeout=120) as client:
            while True:
                with lock:
                    if not queue:
                        return
                    body = queue.pop()
                started = time.perf_counter()
                response = client.post("/v1/events", content=body)
                elapsed = time.perf_counter() - started
                response.raise_for_status()
                with lock:
                    latencies.append(elapsed)
                    accepted += response.json()["accepted"]

    threads = [threading.Thread(target=worker) for _ in range(connections)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started, latencies, accepted


def copy_rows(database_url: str, events: list[dict[str, Any]]) -> float:
    """Seconds to COPY the same rows into the emptied events table (rows built beforehand)."""
    received_at = datetime.now(UTC)
    rows = [event_row(event, received_at) for event in events]
    empty_events_table(database_url)
    return copy_events(database_url, rows)


def empty_events_table(database_url: str) -> None:
    """Empty the event store and everything derived from it."""
    with psycopg.connect(libpq_url(database_url)) as connection:
        connection.execute(
            "TRUNCATE events, event_ids, pending_events, customer_days, customer_products"
        )


def pending(database_url: str) -> int:
    with psycopg.connect(libpq_url(database_url)) as connection:
        return int(connection.execute("SELECT count(*) FROM pending_events").fetchone()[0])  # type: ignore[index]


def portrait_catch_up(database_url: str, embedded: bool) -> float:
    """Seconds until every acknowledged event is applied to the portrait: waiting for the
    embedded workers, or (worker off) running one worker here until the queue is empty."""
    started = time.perf_counter()
    if embedded:
        while pending(database_url):
            time.sleep(0.05)
    else:
        settings = Settings(_env_file=None, database_url=database_url)  # type: ignore[call-arg]
        engine = make_engine(settings)
        drain(make_session_factory(engine))
        engine.dispose()
    return time.perf_counter() - started


def one_round(
    url: str, base: str, token: str, events: list[dict[str, Any]], bodies: list[bytes], args: Any
) -> dict[str, float]:
    """The API run (and the portrait catching up) and the COPY run, each into an empty table."""
    empty_events_table(url)
    seconds, latencies, accepted = send_all(base, token, bodies, args.connections)
    assert accepted == len(events), f"accepted {accepted} of {len(events)}"
    catch_up = portrait_catch_up(url, embedded=args.worker == "embedded")
    copy_seconds = copy_rows(url, events)
    api_rate, copy_rate = len(events) / seconds, len(events) / copy_seconds
    return {
        "api_events_per_s": api_rate,
        "batch_p50_ms": percentile(latencies, 50) * 1000,
        "batch_p99_ms": percentile(latencies, 99) * 1000,
        "copy_events_per_s": copy_rate,
        "ratio_api_to_copy": api_rate / copy_rate,
        "portrait_catch_up_s": catch_up,
        "sustained_events_per_s": len(events) / (seconds + catch_up),
    }


def _rounded(value: float, digits: int) -> float | int:
    return round(value, digits) if digits else round(value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=1_000)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    parser.add_argument("--rounds", type=int, default=3, help="report the median of N rounds")
    parser.add_argument(
        "--worker",
        choices=["embedded", "off"],
        default="embedded",
        help="embedded: the API processes apply events to the portrait as they come; off: "
        "ingestion alone, then one worker applies the queue",
    )
    args = parser.parse_args()

    events = make_events(args.events)
    bodies = [
        json.dumps({"events": events[i : i + args.batch]}).encode()
        for i in range(0, len(events), args.batch)
    ]
    with scratch_postgres() as url:
        settings = Settings(_env_file=None, database_url=url)  # type: ignore[call-arg]
        engine = make_engine(settings)
        with make_session_factory(engine)() as session, session.begin():
            _, token = auth.create_key(session, "bench", [auth.Scope.ingest])
            partition_months(session, events)
        engine.dispose()

        with running_server(url, args.workers, {"CLV_WORKER": args.worker}, event_workers=0) as (
            base,
            pid,
        ):
            rounds = [one_round(url, base, token, events, bodies, args) for _ in range(args.rounds)]
            rss = peak_rss_mib(pid)

    result: dict[str, Any] = {
        "events": len(events),
        "batch": args.batch,
        "connections": args.connections,
        "workers": args.workers,
        "worker": args.worker,
        "rounds": args.rounds,
    }
    for name in rounds[0]:
        digits = 3 if name.startswith("ratio") else 1 if name.endswith(("_ms", "up_s")) else 0
        values = [r[name] for r in rounds]
        result[name] = _rounded(statistics.median(values), digits)
        result[f"{name}_range"] = [_rounded(min(values), digits), _rounded(max(values), digits)]
    result["server_peak_rss_mib"] = round(rss, 1)
    report("ingest", result)


if __name__ == "__main__":
    main()
