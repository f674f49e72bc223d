"""Soak: a bounded mixed load on one `clv serve` process, for errors, tail latency and memory.

1. Simulates a small shop whose history ends yesterday (default 3,000 customers over 540 days),
   loads it into a scratch PostgreSQL database, trains a champion (`clv train`, 365 days, a few
   epochs) and runs its rescoring job; then starts `clv serve` as it starts by default: one API
   process and one ``clv worker`` process beside it, which applies events to the portrait and
   rescores their customers (``--event-workers M``: M of them; 0: the API process's own
   embedded worker thread does that work).
2. From a separate process (spawned: the clients do not share the server's interpreter), N
   asyncio clients on keep-alive connections (httpx2) each repeat, for S seconds, an operation
   drawn by weight:
   - ingest: POST /v1/events, 10 new events (views and purchases of known and new customers);
   - score: GET /v1/customers/{id}/clv, a known customer's stored score;
   - explain: the same with ?explain=true (its stored attributions).
   A non-2xx answer, a transport error, an ingest answer that does not accept the whole batch
   or an explain answer without an explanation is an error (target 0).
   Beside them, a freshness probe posts one order a second for a known customer and polls its
   score until it describes a moment after the order: event -> fresh score under the load
   (target p99 <= 2 s).
3. Samples the server's resident memory (VmRSS, with children) every 2 s: growth from the end
   of the warm-up (30 s: RSS climbs until then) to the end of the load, medians over 15 s each
   (target < 10%); and the queues' depths (events to apply, customers waiting for a fresh
   score, scores waiting for attributions).
4. Waits for the event worker to catch up (no queued event, no stale score), sampling the RSS
   on, then checks that every acknowledged event is stored once and counted once in the
   portrait.

Client and server share the machine's cores, so the figures are those of the pair.

    .venv/bin/python bench/soak.py [--customers 3000] [--clients 32] [--seconds 90]
                                   [--workers 1] [--event-workers 1]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import queue
import random
import statistics
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx2 as httpx
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import (
    children,
    cpu_seconds,
    includes,
    libpq_url,
    percentile,
    postgres_pids,
    probe_order,
    report,
    rss_mib,
    running_server,
    scored_shop,
    simulated_shop_in_postgres,
)
from service.simulator.config import ShopConfig

DAYS = 540
HORIZON = 365
WEIGHTS = {"ingest": 3, "score": 5, "explain": 2}
BATCH = 10  # events per ingest request
PURCHASE_SHARE = 0.2  # of the events sent; the rest are product views
RSS_EVERY_S = 2.0
RSS_SPAN_S = 15.0  # RSS after the warm-up and at the end: medians over this many seconds
CATCH_UP_RSS_EVERY_S = 10.0
WINDOW_S = 10  # throughput is also reported per window of this many seconds
KEPT_MESSAGES = 5


@dataclass(frozen=True)
class Plan:
    """What the client process needs (it is spawned, so this is pickled)."""

    base: str
    url: str  # the database's, for the queues' depths
    key: str
    customers: list[str]
    clients: int
    seconds: float
    seed: int


@dataclass
class Tally:
    """What the clients saw, shared by the tasks of the client process (one thread)."""

    latencies_ms: dict[str, list[float]] = field(default_factory=lambda: {k: [] for k in WEIGHTS})
    errors: dict[str, int] = field(default_factory=lambda: dict.fromkeys(WEIGHTS, 0))
    messages: list[str] = field(default_factory=list)
    accepted: int = 0  # events the server acknowledged as stored
    freshness_s: list[float] = field(default_factory=list)  # the probe's event -> fresh score
    finished_at: list[float] = field(default_factory=list)  # seconds from the start

    def record(self, operation: str, seconds: float, problem: str | None, at: float) -> None:
        self.latencies_ms[operation].append(seconds * 1000)
        self.finished_at.append(at)
        if problem is not None:
            self.errors[operation] += 1
            if len(self.messages) < KEPT_MESSAGES:
                self.messages.append(problem)


def new_events(client: int, number: int, customers: list[str], rng: random.Random) -> list[Any]:
    """A batch of unique events: views and purchases of two known customers and a new one."""
    now = datetime.now(UTC).isoformat()
    people = [rng.choice(customers), rng.choice(customers), f"soak-new-{client}-{number}"]
    events = []
    for index in range(BATCH):
        sku = f"SOAK-{rng.randrange(50)}"
        event = {
            "event_id": f"soak-{client}-{number}-{index}",
            "customer_id": rng.choice(people),
            "type": "view",
            "occurred_at": now,
            "items": [{"sku": sku}],
        }
        if rng.random() < PURCHASE_SHARE:
            price = f"{rng.uniform(5, 200):.2f}"
            event |= {"type": "purchase", "amount": price, "items": [{"sku": sku, "price": price}]}
        events.append(event)
    return events


async def one_request(
    http: httpx.AsyncClient,
    operation: str,
    client: int,
    number: int,
    plan: Plan,
    rng: random.Random,
) -> tuple[str | None, int]:
    """Send one operation; returns (what went wrong or None, events acknowledged)."""
    if operation == "ingest":
        events = new_events(client, number, plan.customers, rng)
        response = await http.post("/v1/events", json={"events": events})
    else:
        params = {"explain": "true"} if operation == "explain" else {}
        response = await http.get(f"/v1/customers/{rng.choice(plan.customers)}/clv", params=params)
    if not response.is_success:
        return f"{operation}: HTTP {response.status_code} {response.text[:200]}", 0
    answer = response.json()
    if operation == "ingest":
        accepted = int(answer["accepted"])
        if accepted != BATCH:
            return f"ingest: {accepted} of {BATCH} accepted: {answer['rejections'][:2]}", accepted
        return None, accepted
    if operation == "explain" and answer.get("explanation") is None:
        return "explain: no explanation in the answer", 0
    return None, 0


async def client_task(
    http: httpx.AsyncClient, client: int, plan: Plan, tally: Tally, start: float
) -> None:
    rng = random.Random(plan.seed * 1_000 + client)
    operations, weights = list(WEIGHTS), list(WEIGHTS.values())
    number = 0
    while time.perf_counter() - start < plan.seconds:
        operation = rng.choices(operations, weights)[0]
        number += 1
        sent = time.perf_counter()
        try:
            problem, accepted = await one_request(http, operation, client, number, plan, rng)
        except (httpx.HTTPError, ValueError) as error:
            problem, accepted = f"{operation}: {type(error).__name__}: {error}", 0
        done = time.perf_counter()
        tally.accepted += accepted
        tally.record(operation, done - sent, problem, done - start)


async def freshness_probe(http: httpx.AsyncClient, plan: Plan, tally: Tally, start: float) -> None:
    """Once a second: an order for a known customer, then its score polled every 50 ms until it
    describes a moment at or after the order (given up after 30 s, recorded as 30 s)."""
    rng = random.Random(plan.seed - 1)
    number = 0
    while time.perf_counter() - start < plan.seconds:
        number += 1
        customer, sent = rng.choice(plan.customers), datetime.now(UTC)
        began = time.perf_counter()
        order = probe_order(f"soak-fresh-{number}", customer, sent)
        try:
            response = await http.post("/v1/events", json={"events": [order]})
            tally.accepted += int(response.json()["accepted"])
            while time.perf_counter() - began < 30:
                if includes((await http.get(f"/v1/customers/{customer}/clv")).json(), sent):
                    break
                await asyncio.sleep(0.05)
        except (httpx.HTTPError, ValueError, KeyError) as error:
            tally.messages.append(f"freshness probe: {type(error).__name__}: {error}")
        tally.freshness_s.append(time.perf_counter() - began)
        await asyncio.sleep(max(0.0, 1.0 - (time.perf_counter() - began)))


async def load(plan: Plan, started: multiprocessing.Queue[Any]) -> dict[str, Any]:
    connections = plan.clients + 1  # and the freshness probe
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    headers = {"Authorization": f"Bearer {plan.key}"}
    tally = Tally()
    async with httpx.AsyncClient(
        base_url=plan.base, headers=headers, limits=limits, timeout=30
    ) as http:
        started.put(("started", None))
        start = time.perf_counter()
        await asyncio.gather(
            freshness_probe(http, plan, tally, start),
            *(client_task(http, c, plan, tally, start) for c in range(plan.clients)),
        )
    return summary(tally)


def summary(tally: Tally) -> dict[str, Any]:
    """Per operation: requests, throughput, p50/p99 and errors; then all together."""
    seconds = max(tally.finished_at)
    result: dict[str, Any] = {"load_seconds": round(seconds, 1)}
    every = [ms for values in tally.latencies_ms.values() for ms in values]
    for name, values in [*tally.latencies_ms.items(), ("all", every)]:
        errors = sum(tally.errors.values()) if name == "all" else tally.errors[name]
        result |= {
            f"{name}_requests": len(values),
            f"{name}_per_s": round(len(values) / seconds, 1),
            f"{name}_p50_ms": round(percentile(values, 50), 1) if values else None,
            f"{name}_p99_ms": round(percentile(values, 99), 1) if values else None,
            f"{name}_errors": errors,
        }
    windows = [0] * int(seconds // WINDOW_S)  # whole windows only
    for at in tally.finished_at:
        if at < len(windows) * WINDOW_S:
            windows[int(at // WINDOW_S)] += 1
    result["all_per_s_by_window"] = [round(count / WINDOW_S, 1) for count in windows]
    result["events_acknowledged"] = tally.accepted
    fresh = tally.freshness_s
    result |= {
        "event_to_fresh_score_samples": len(fresh),
        "event_to_fresh_score_p50_s": round(percentile(fresh, 50), 3) if fresh else None,
        "event_to_fresh_score_p99_s": round(percentile(fresh, 99), 3) if fresh else None,
        "event_to_fresh_score_max_s": round(max(fresh), 3) if fresh else None,
    }
    result["error_messages"] = tally.messages
    return result


def client_process(plan: Plan, messages: multiprocessing.Queue[Any]) -> None:
    """The separate process: runs the load and sends its summary back."""
    messages.put(("result", asyncio.run(load(plan, messages))))


def run_load(plan: Plan, pid: int, warm_up_s: float) -> dict[str, Any]:
    """The load from a spawned process, with the server's RSS sampled meanwhile."""
    context = multiprocessing.get_context("spawn")
    messages: multiprocessing.Queue[Any] = context.Queue()
    process = context.Process(target=client_process, args=(plan, messages))
    process.start()
    messages.get(timeout=300)  # started: the client process has imported and connected
    start = time.monotonic()
    curve = [(0.0, rss_mib(pid))]
    depths = [[0.0, *queue_depths(plan.url)]]
    spawned = children(pid)  # event workers; with --workers N, uvicorn's API processes too
    background = [child for child in spawned if "worker" in command_line(child)]
    api = [pid, *(child for child in spawned if child not in background)]
    roles = {"api": api, "workers": background, "clients": [process.pid]}
    cpu = CpuShares(roles)
    result: dict[str, Any]
    while True:
        try:
            _, result = messages.get(timeout=RSS_EVERY_S)
            break
        except queue.Empty:
            if not process.is_alive():
                raise RuntimeError("the client process died") from None
            at = round(time.monotonic() - start, 1)
            curve.append((at, rss_mib(pid)))
            depths.append([at, *queue_depths(plan.url)])
            cpu.sample()
    cpu.sample()
    process.join()
    curve.append((round(time.monotonic() - start, 1), rss_mib(pid)))
    # Medians over RSS_SPAN_S: one sample can land on a request's transient allocations.
    last = curve[-1][0]
    warm = median_between(curve, warm_up_s, warm_up_s + RSS_SPAN_S)
    end = median_between(curve, last - RSS_SPAN_S, last + 1)
    return result | {
        "server_rss_start_mib": round(curve[0][1], 1),
        "server_rss_after_warm_up_mib": round(warm, 1),
        "server_rss_end_mib": round(end, 1),
        "server_rss_growth_after_warm_up_pct": round((end - warm) / warm * 100, 1),
        "server_rss_curve_s_mib": [[at, round(mib, 1)] for at, mib in curve],
        "stale_scores_max": max(row[2] for row in depths),
        "queue_depths_s_pending_stale_unexplained": depths,
        "cpu_pct_of_one_core": cpu.shares(time.monotonic() - start),
    }


class CpuShares:
    """CPU time of each role's processes (and of PostgreSQL's) over the load: where the two
    cores went. A process's last sample counts once it is gone; a PostgreSQL backend that both
    started and ended between samples is missed."""

    def __init__(self, roles: dict[str, list[int]]) -> None:
        self.roles = roles
        self.first: dict[int, float] = {}
        self.last: dict[int, float] = {}
        self.sample()
        self.first = dict(self.last)

    def sample(self) -> None:
        self.roles["postgres"] = sorted(set(self.roles.get("postgres", [])) | set(postgres_pids()))
        for pids in self.roles.values():
            for pid in pids:
                seconds = cpu_seconds(pid)
                if seconds is not None:
                    self.last[pid] = seconds

    def shares(self, wall: float) -> dict[str, float]:
        """Per role, % of one core over ``wall`` seconds (200 is the whole machine)."""
        used = {
            role: sum(self.last.get(pid, 0.0) - self.first.get(pid, 0.0) for pid in pids)
            for role, pids in self.roles.items()
        }
        return {role: round(100 * seconds / wall, 1) for role, seconds in used.items()}


def command_line(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
    except FileNotFoundError:
        return []


def median_between(curve: list[tuple[float, float]], start: float, end: float) -> float:
    """The median RSS sampled in [start, end); the last sample in a load too short for that."""
    return statistics.median([m for at, m in curve if start <= at < end] or [curve[-1][1]])


def scalar(url: str, query: str) -> int:
    with psycopg.connect(libpq_url(url)) as connection:
        row = connection.execute(query).fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def queue_depths(url: str) -> list[int]:
    """Events waiting for the worker, customers waiting for a fresh score, scores waiting for
    their attributions."""
    with psycopg.connect(libpq_url(url)) as connection:
        row = connection.execute(f"SELECT ({QUEUED_EVENTS}), ({STALE_SCORES}), ({UNEXPLAINED})")
        return [int(value) for value in row.fetchone() or (0, 0, 0)]


PORTRAIT_EVENTS = "SELECT sum(events) FROM customer_days"
QUEUED_EVENTS = "SELECT count(*) FROM pending_events"
STALE_SCORES = "SELECT count(*) FROM stale_scores"
UNEXPLAINED = "SELECT count(*) FROM unexplained_scores"
BACKLOG = f"SELECT ({QUEUED_EVENTS}) + ({STALE_SCORES})"
STORED = "SELECT count(*) FROM events WHERE event_id LIKE 'soak-%'"


def catch_up(url: str, pid: int, timeout: float) -> dict[str, Any]:
    """Seconds until the event worker has applied every event and rescored every customer it
    marked stale (None if not within ``timeout``), with the server's RSS meanwhile."""
    started = time.monotonic()
    curve: list[list[float]] = []
    while (seconds := time.monotonic() - started) <= timeout and scalar(url, BACKLOG):
        if not curve or seconds - curve[-1][0] >= CATCH_UP_RSS_EVERY_S:
            curve.append([round(seconds, 1), round(rss_mib(pid), 1)])
        time.sleep(0.2)
    return {
        "catch_up_s": round(seconds, 1) if seconds <= timeout else None,
        "server_rss_after_catch_up_mib": round(rss_mib(pid), 1),
        "server_rss_catch_up_curve_s_mib": curve,
    }


def table(result: dict[str, Any]) -> str:
    columns = ("requests", "per_s", "p50_ms", "p99_ms", "errors")
    rows = [["operation", *columns]]
    rows += [[name, *(str(result[f"{name}_{c}"]) for c in columns)] for name in [*WEIGHTS, "all"]]
    return "\n".join(row[0].ljust(10) + "".join(v.rjust(10) for v in row[1:]) for row in rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=3_000)
    parser.add_argument("--epochs", type=int, default=5, help="upper bound for clv train")
    parser.add_argument("--clients", type=int, default=32, help="concurrent client tasks")
    parser.add_argument("--workers", type=int, default=1, help="clv serve --workers: API processes")
    parser.add_argument("--seconds", type=float, default=90, help="length of the load")
    parser.add_argument("--warm-up", type=float, default=30, help="seconds before the RSS base")
    parser.add_argument("--catch-up-timeout", type=float, default=600)
    parser.add_argument(
        "--event-workers",
        type=int,
        default=1,
        help="clv serve --event-workers: background work in processes of its own (0: embedded)",
    )
    args = parser.parse_args()
    began = time.perf_counter()
    first_day = datetime.now(UTC).date() - timedelta(days=DAYS)
    config = ShopConfig(customers=args.customers, days=DAYS, horizon_days=HORIZON, start=first_day)

    with simulated_shop_in_postgres(config) as shop:
        scored = scored_shop(shop, HORIZON, args.epochs)
        result: dict[str, Any] = {
            "customers": len(scored.customers),
            "events_before": shop.events,
            "train_seconds": round(scored.train_seconds, 1),
            "rescore_customers_per_s": round(len(scored.customers) / scored.rescore_seconds, 1),
            "explain_customers_per_s": round(len(scored.customers) / scored.explain_seconds, 1),
            "setup_seconds": round(time.perf_counter() - began, 1),
            "clients": args.clients,
            "weights": WEIGHTS,
            "batch_events": BATCH,
            "api_workers": args.workers,
            "event_workers": args.event_workers,
        }
        portrait_before = scalar(shop.url, PORTRAIT_EVENTS)
        env = {**shop.env, "CLV_LOG_LEVEL": "WARNING"}
        layout = {"extra_env": env, "workers": args.workers, "event_workers": args.event_workers}
        with running_server(shop.url, **layout) as (base, pid):
            plan = Plan(
                base, shop.url, scored.key, scored.customers, args.clients, args.seconds, seed=0
            )
            result |= run_load(plan, pid, args.warm_up)
            result["queued_events_at_end"] = scalar(shop.url, QUEUED_EVENTS)
            result["stale_scores_at_end"] = scalar(shop.url, STALE_SCORES)
            result |= catch_up(shop.url, pid, args.catch_up_timeout)
        acknowledged = result["events_acknowledged"]
        result["events_stored"] = scalar(shop.url, STORED)
        result["events_in_portrait"] = scalar(shop.url, PORTRAIT_EVENTS) - portrait_before
        result["events_exactly_once"] = (
            result["events_stored"] == result["events_in_portrait"] == acknowledged
        )
    result["wall_seconds"] = round(time.perf_counter() - began, 1)
    report("soak", result)
    print(table(result))


if __name__ == "__main__":
    main()
