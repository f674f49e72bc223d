"""Ingestion throughput end to end, against a raw COPY of the same rows in the same run.

The service runs as `clv serve` on a scratch PostgreSQL database; this process is the client,
sending pre-serialised batches over a few keep-alive connections. Then the same rows are COPYed
straight into the same (emptied) table: the ratio says how close the API gets to the database's
own bulk path. Also prints batch latency percentiles and the server's peak RSS. The machine is
noisy, so it runs several rounds (each API run and each COPY into an empty table) and prints the
median of each figure with its range.

    .venv/bin/python bench/ingest.py [--events 200000] [--batch 1000] [--connections 4]
                                     [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx2 as httpx
import psycopg
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import RESULTS, peak_rss_mib, percentile, running_server, scratch_postgres
from service.auth import service as auth
from service.config import Settings
from service.db.session import make_engine, make_session_factory

KINDS = ["purchase", "view", "add_to_cart", "session_start"]
CATEGORIES = ["apparel", "shoes", "home", "beauty", "toys", "garden", "books", "sports"]


def make_events(count: int, seed: int = 7) -> list[dict[str, Any]]:
    """A storefront-like mix: 25% purchases with 1-3 items, the rest browsing and carts."""
    rng = random.Random(seed)
    start = datetime(2025, 1, 1, tzinfo=UTC)
    events = []
    for i in range(count):
        kind = rng.choices(KINDS, [25, 50, 15, 10])[0]
        event: dict[str, Any] = {
            "event_id": f"bench-{i:09d}",
            "customer_id": f"cust-{rng.randrange(50_000):06d}",
            "type": kind,
            "occurred_at": (start + timedelta(seconds=rng.randrange(60 * 86400))).isoformat(),
            "source": rng.choice(["web", "app"]),
        }
        if kind == "purchase":
            items = [
                {
                    "sku": f"SKU-{rng.randrange(5000):05d}",
                    "category": rng.choice(CATEGORIES),
                    "quantity": rng.randint(1, 3),
                    "price": f"{rng.uniform(3, 120):.2f}",
                }
                for _ in range(rng.randint(1, 3))
            ]
            total = sum(Decimal(item["price"]) * item["quantity"] for item in items)
            event.update(amount=str(total), currency="USD", items=items)
        elif kind != "session_start":
            event["items"] = [{"sku": f"SKU-{rng.randrange(5000):05d}"}]
        events.append(event)
    return events


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
    rows = [
        (
            e["event_id"],
            e["customer_id"],
            e["type"],
            datetime.fromisoformat(e["occurred_at"]),
            Decimal(e["amount"]) if "amount" in e else None,
            e.get("currency"),
            json.dumps(e["items"]) if "items" in e else None,
            e["source"],
            None,
            received_at,
        )
        for e in events
    ]
    empty_events_table(database_url)
    with psycopg.connect(_libpq_url(database_url)) as connection:
        started = time.perf_counter()
        with (
            connection.cursor() as cursor,
            cursor.copy(
                "COPY events (event_id, customer_id, type, occurred_at, amount, currency, items, "
                "source, properties, received_at) FROM STDIN"
            ) as copy,
        ):
            for row in rows:
                copy.write_row(row)
        connection.commit()
        return time.perf_counter() - started


def _libpq_url(database_url: str) -> str:
    return make_url(database_url).set(drivername="postgresql").render_as_string(False)


def empty_events_table(database_url: str) -> None:
    with psycopg.connect(_libpq_url(database_url)) as connection:
        connection.execute("TRUNCATE events")


def one_round(
    url: str, base: str, token: str, events: list[dict[str, Any]], bodies: list[bytes], args: Any
) -> dict[str, float]:
    """The API run and the COPY run, each into an empty table."""
    empty_events_table(url)
    seconds, latencies, accepted = send_all(base, token, bodies, args.connections)
    assert accepted == len(events), f"accepted {accepted} of {len(events)}"
    copy_seconds = copy_rows(url, events)
    api_rate, copy_rate = len(events) / seconds, len(events) / copy_seconds
    return {
        "api_events_per_s": api_rate,
        "batch_p50_ms": percentile(latencies, 50) * 1000,
        "batch_p99_ms": percentile(latencies, 99) * 1000,
        "copy_events_per_s": copy_rate,
        "ratio_api_to_copy": api_rate / copy_rate,
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
        engine.dispose()

        with running_server(url, args.workers) as (base, pid):
            rounds = [one_round(url, base, token, events, bodies, args) for _ in range(args.rounds)]
            rss = peak_rss_mib(pid)

    result: dict[str, Any] = {
        "events": len(events),
        "batch": args.batch,
        "connections": args.connections,
        "workers": args.workers,
        "rounds": args.rounds,
    }
    for name in rounds[0]:
        digits = 3 if name.startswith("ratio") else 1 if name.endswith("_ms") else 0
        values = [r[name] for r in rounds]
        result[name] = _rounded(statistics.median(values), digits)
        result[f"{name}_range"] = [_rounded(min(values), digits), _rounded(max(values), digits)]
    result["server_peak_rss_mib"] = round(rss, 1)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "ingest.json").write_text(json.dumps(result, indent=2) + "\n")
    for key, value in result.items():
        print(f"{key:>22}: {value}")


if __name__ == "__main__":
    main()
