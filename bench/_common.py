"""Helpers shared by the benchmarks: a throw-away PostgreSQL database and a `clv serve` process."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx2 as httpx
import numpy as np
import pandas as pd
import psycopg
import torch
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from service.auth import service as auth
from service.background import job_runner
from service.config import Settings
from service.customers import service as customers
from service.customers.schemas import CustomerAttributesUpdate
from service.db import migrations
from service.db.bulk import analyze
from service.db.session import make_engine, make_session_factory
from service.events import partitions
from service.events.repository import customers_until
from service.events.worker import IMPORTED_TABLES
from service.portrait import service as portrait
from service.privacy import PiiHasher
from service.scoring.service import Scorer, explain_pending
from service.simulator.config import ShopConfig
from service.simulator.files import write_shop

POSTGRES_URL = os.environ.get(
    "CLV_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
RESULTS = Path(__file__).resolve().parent / "results"


@contextmanager
def scratch_postgres() -> Iterator[str]:
    """A migrated PostgreSQL database that is dropped afterwards."""
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    name = f"clv_bench_{uuid.uuid4().hex[:10]}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    try:
        migrations.upgrade(url)
        yield url
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def running_server(
    database_url: str,
    workers: int = 1,
    extra_env: dict[str, str] | None = None,
    event_workers: int = 1,
) -> Iterator[tuple[str, int]]:
    """`clv serve` in its own process, by default laid out as it starts by default (one API
    process, one worker process); yields (base URL, pid)."""
    port = free_port()
    env = {
        **os.environ,
        "CLV_DATABASE_URL": database_url,
        "CLV_LOG_LEVEL": "WARNING",
        **(extra_env or {}),
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "service.cli",
            "serve",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--event-workers",
            str(event_workers),
        ],
        env=env,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline or process.poll() is not None:
            process.kill()
            raise RuntimeError("the server did not start")
        time.sleep(0.2)
    try:
        yield base, process.pid
    finally:
        workers = children(process.pid)  # they stop once it is gone
        process.terminate()
        process.wait(timeout=60)
        deadline = time.monotonic() + 60
        while any(_running(worker) for worker in workers):
            if time.monotonic() > deadline:
                raise RuntimeError(f"the worker processes {workers} did not stop")
            time.sleep(0.1)


def peak_rss_mib(pid: int) -> float:
    """Peak resident memory (VmHWM) of a process and its children, in MiB."""
    return _memory_mib(pid, "VmHWM:")


def rss_mib(pid: int) -> float:
    """Resident memory now (VmRSS) of a process and its children, in MiB."""
    return _memory_mib(pid, "VmRSS:")


def _memory_mib(pid: int, field: str) -> float:
    total_kib = 0
    for candidate in [pid, *children(pid)]:
        try:
            status = Path(f"/proc/{candidate}/status").read_text()
        except FileNotFoundError:
            continue
        for line in status.splitlines():
            if line.startswith(field):
                total_kib += int(line.split()[1])
    return total_kib / 1024


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a process so far (None once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def postgres_pids() -> list[int]:
    """The PostgreSQL server's processes on this machine (its backends included)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == "postgres":
                    found.append(int(entry.name))
            except (FileNotFoundError, ProcessLookupError):
                continue
    return found


def _running(pid: int) -> bool:
    """The process exists and is not a zombie waiting to be reaped."""
    try:
        return "State:\tZ" not in Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False


def children(pid: int) -> list[int]:
    """The process's direct children (``clv serve``'s worker processes)."""
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(child) for child in path.read_text().split()] if path.exists() else []


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def timed(run: Callable[[], object], repeats: int) -> float:
    """p50 seconds of ``repeats`` runs, after one run that warms caches."""
    run()
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        seconds.append(time.perf_counter() - started)
    return percentile(seconds, 50)


def churn_calibration(quiet: np.ndarray, ordered: np.ndarray, draws: int = 200) -> dict[str, float]:
    """How far predicted churn (``quiet``: each customer's P(no order in the horizon)) is from
    what happened (``ordered``): the largest |predicted - observed| share without an order over
    deciles of predicted churn ("gap"), beside the gap a perfectly calibrated model would show on
    as many customers by chance alone: its median and 95th percentile over ``draws`` outcomes
    drawn from ``quiet`` itself. A decile of a thousand customers holds a hundred, whose observed
    share moves by about 5 points by chance, so the gap alone overstates a small shop's error."""
    decile = pd.qcut(pd.Series(quiet).rank(method="first"), 10, labels=False).to_numpy()

    def gap(no_order: np.ndarray) -> float:
        return max(abs(quiet[decile == d].mean() - no_order[decile == d].mean()) for d in range(10))

    rng = np.random.default_rng(0)
    chance = [gap(rng.random(len(quiet)) < quiet) for _ in range(draws)]
    return {
        "gap": round(float(gap(~ordered)), 3),
        "chance_median": round(float(np.median(chance)), 3),
        "chance_p95": round(float(np.quantile(chance, 0.95)), 3),
    }


def report(name: str, result: dict[str, Any]) -> None:
    """Print the figures and keep them in bench/results/NAME.json."""
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=2, default=str) + "\n")
    width = max(len(key) for key in result)
    for key, value in result.items():
        print(f"{key:>{width}}: {value}")


def libpq_url(database_url: str) -> str:
    """The SQLAlchemy URL as psycopg takes it."""
    return make_url(database_url).set(drivername="postgresql").render_as_string(False)


def event_row(event: dict[str, Any], received_at: datetime) -> tuple[Any, ...]:
    """An API event object as a row of the events table, for COPY."""
    items = json.dumps(event["items"]) if "items" in event else None
    return (
        event["event_id"],
        event["customer_id"],
        event["type"],
        datetime.fromisoformat(event["occurred_at"]),
        Decimal(event["amount"]) if "amount" in event else None,
        event.get("currency"),
        items,
        event.get("source"),
        None,
        received_at,
    )


def copy_events(database_url: str, rows: Iterable[tuple[Any, ...]]) -> float:
    """COPY rows (``event_row``) into the events table; returns the seconds it took."""
    with psycopg.connect(libpq_url(database_url)) as connection:
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


def copy_shop_events(url: str, folder: Path, received: datetime) -> float:
    """COPY a simulated shop's events in, and their ids into ``event_ids`` (what ingestion
    keeps to store each event once); returns the seconds the COPY took."""
    lines = (folder / "events.jsonl").open()
    seconds = copy_events(url, (event_row(json.loads(line), received) for line in lines))
    with psycopg.connect(libpq_url(url), autocommit=True) as connection:
        connection.execute(
            "INSERT INTO event_ids (event_id, customer_id) SELECT event_id, customer_id FROM events"
        )
    return seconds


def load_shop(url: str, folder: Path) -> int:
    """COPY the events in and build the portrait from them, as `clv import-events` leaves a
    shop (without it, every customer would score from an empty portrait); profiles through the
    bulk attribute path. Returns the event count."""
    received = datetime.now(UTC)
    copy_shop_events(url, folder, received)
    count: int = json.loads((folder / "shop.json").read_text())["counts"]["events"]
    settings = Settings(_env_file=None, database_url=url)  # type: ignore[call-arg]
    policy = customers.ProfilePolicy.from_settings(settings, PiiHasher.from_settings(settings))
    engine = make_engine(settings)
    updates = []
    for line in (folder / "profiles.jsonl").open():
        row = json.loads(line)
        update = CustomerAttributesUpdate(source=row["source"], attributes=row["attributes"])
        updates.append((row["customer_id"], update))
    factory = make_session_factory(engine)
    with factory() as session, session.begin():
        portrait.rebuild(session)
        customers.replace_many(session, updates, policy)
    partitions.maintain(factory, received, None)  # as `clv import-events` ends (settle_import)
    with factory() as session, session.begin():
        analyze(session, IMPORTED_TABLES)
    engine.dispose()
    return count


@dataclass(frozen=True)
class ShopDatabase:
    folder: Path  # scratch: the shop under shop/, model versions under models/
    url: str
    events: int
    env: dict[str, str]  # the environment for `clv` commands on this database


@contextmanager
def simulated_shop_in_postgres(config: ShopConfig, device: str = "cpu") -> Iterator[ShopDatabase]:
    """A simulated shop loaded into a scratch PostgreSQL database, with a scratch model folder;
    both are removed afterwards."""
    with tempfile.TemporaryDirectory() as tmp, scratch_postgres() as url:
        folder = Path(tmp)
        write_shop(config, folder / "shop")
        events = load_shop(url, folder / "shop")
        env = {
            **os.environ,
            "CLV_DATABASE_URL": url,
            "CLV_MODEL_DIR": str(folder / "models"),
            "CLV_DEVICE": device,
        }
        yield ShopDatabase(folder, url, events, env)


@dataclass(frozen=True)
class ScoredShop:
    """A shop database with a trained champion and every customer's stored score."""

    settings: Settings  # its database and model folder
    customers: list[str]  # every customer with an event
    key: str  # an API key with every scope
    train_seconds: float
    rescore_seconds: float  # the rescoring job: every customer's score
    explain_seconds: float  # then every stored score's attributions, as idle workers do


def scored_shop(shop: ShopDatabase, horizon_days: int, epochs: int | None = None) -> ScoredShop:
    """Train the champion (`clv train` in its own process, as an operator would), run its
    rescoring job here (every customer's stored score), explain every score as idle workers
    would, and create a key."""
    train = [sys.executable, "-m", "service.cli", "train", "--horizon-days", str(horizon_days)]
    train += ["--epochs", str(epochs)] if epochs else []
    started = time.perf_counter()
    subprocess.run(train, env={**shop.env, "CLV_LOG_LEVEL": "WARNING"}, check=True)
    train_seconds = time.perf_counter() - started
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        database_url=shop.url,
        model_dir=shop.folder / "models",
        device=shop.env["CLV_DEVICE"],
    )
    torch.set_num_threads(settings.torch_threads)  # as a worker process runs: 1 by default
    engine = make_engine(settings)
    factory = make_session_factory(engine)
    started = time.perf_counter()
    job_runner(factory, settings).run_once()
    rescore_seconds = time.perf_counter() - started
    scorer, started = Scorer(settings), time.perf_counter()
    while explain_pending(factory, scorer):
        pass
    explain_seconds = time.perf_counter() - started
    with factory() as session, session.begin():
        customers = customers_until(session, datetime.now(UTC))
        _, key = auth.create_key(session, "bench", list(auth.Scope))
    engine.dispose()
    return ScoredShop(settings, customers, key, train_seconds, rescore_seconds, explain_seconds)


def probe_order(event_id: str, customer: str, sent: datetime) -> dict[str, Any]:
    """The order the freshness probes send (bench/score.py idle, bench/soak.py under load)."""
    return {
        "event_id": event_id,
        "customer_id": customer,
        "type": "purchase",
        "occurred_at": sent.isoformat(),
        "amount": "80.00",
    }


def includes(score: dict[str, Any], sent: datetime) -> bool:
    """A score read that includes an order sent at ``sent``: stored, and describing a moment at
    or after it."""
    return score["source"] == "stored" and datetime.fromisoformat(score["as_of"]) >= sent
