"""``clv serve`` and ``clv demo``."""

# Beyond typer, rich and the standard library, imports go inside the commands: --help is instant.
from __future__ import annotations

import json
import logging.config
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

from service.cli.common import console, load_settings, session_factory
from service.cli.data import import_events, simulate
from service.cli.models import train

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

    from service.jobs.runner import JobRunner

logger = logging.getLogger(__name__)
app = typer.Typer()
DEMO_HORIZON_DAYS = 365


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind; 0.0.0.0 for all.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="API (uvicorn) processes.")] = 1,
    event_workers: Annotated[
        int,
        typer.Option(
            min=0,
            help="clv worker processes to run beside the API (applying events, rescoring, "
            "jobs, the scheduler); 0: each API process does that work in a thread (or none "
            "does, with CLV_WORKER=off).",
        ),
    ] = 1,
) -> None:
    """Start the HTTP API (uvicorn).

    The database must be migrated (clv db upgrade). On SIGTERM or Ctrl-C it stops accepting
    connections and finishes the requests in flight (up to 30 s) before exiting.

    The background work runs in --event-workers processes of its own (one by default: one API
    process and one worker fit two cores), restarted if they die, so request handling never
    shares a GIL with rescoring and scheduled jobs never run in an API process: under the
    soak's load, a worker thread inside the API process let thousands of customers go stale
    where the separate process kept event to fresh score under 2 s (bench/soak.py)."""
    import uvicorn

    from service.api.server import HTTP_PROTOCOL
    from service.config import WorkerMode
    from service.logs import logging_config
    from service.ops import metrics

    settings = load_settings()
    with session_factory(settings):
        pass  # refuses an un-migrated database with the command to run
    shared_metrics = None
    if (workers > 1 or event_workers) and not os.environ.get(metrics.MULTIPROCESS_DIR):
        # Before the workers start (they import the metrics library afresh and read it then):
        # every process writes its samples there and a scrape of any one sums them all.
        shared_metrics = tempfile.mkdtemp(prefix="clv-metrics-")
        os.environ[metrics.MULTIPROCESS_DIR] = shared_metrics
    background = EventWorkers(event_workers)
    if event_workers:
        os.environ["CLV_WORKER"] = WorkerMode.off.value  # read by each API process's settings
        background.start()
    try:
        uvicorn.run(
            "service.main:create_app",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            access_log=False,  # RequestContextMiddleware logs each request, with its request id
            log_config=logging_config(settings.log_level),
            timeout_graceful_shutdown=30,
            http=HTTP_PROTOCOL,  # uvicorn's own 4xx (an unparseable request) as JSON errors
        )
    finally:
        background.stop()
        if shared_metrics is not None:
            shutil.rmtree(shared_metrics, ignore_errors=True)


class EventWorkers:
    """``clv worker`` processes beside ``clv serve``'s API, each restarted when it exits (a
    crash, the OOM killer) until ``stop``; stopping sends SIGTERM and waits for the current
    turn (a job running is marked failed at its next checkpoint, as in an API process)."""

    RESTART_SECONDS = 1.0

    def __init__(self, count: int) -> None:
        self.count = count
        self.processes: list[subprocess.Popen[bytes]] = []
        self._stopping = threading.Event()
        self._watcher = threading.Thread(target=self._watch, name="clv-event-workers", daemon=True)

    def start(self) -> None:
        self.processes = [self._spawn() for _ in range(self.count)]
        self._watcher.start()

    def _spawn(self) -> subprocess.Popen[bytes]:
        # --parent-pid: uvicorn ends the process by re-raising SIGTERM after its shutdown, so
        # no clean-up here runs; each worker stops by itself once this process is gone.
        command = [sys.executable, "-m", "service.cli", "worker", "--parent-pid", str(os.getpid())]
        return subprocess.Popen(command)

    def _watch(self) -> None:
        while not self._stopping.wait(self.RESTART_SECONDS):
            for index, process in enumerate(self.processes):
                if process.poll() is not None and not self._stopping.is_set():
                    logger.error(
                        "event worker %d exited with %s; restarting it",
                        process.pid,
                        process.returncode,
                    )
                    self.processes[index] = self._spawn()

    def stop(self, timeout: float = 30.0) -> None:
        self._stopping.set()
        for process in self.processes:
            process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()


@app.command()
def worker(
    parent_pid: Annotated[
        int | None,
        typer.Option(hidden=True, help="Stop when this process is gone (clv serve's own workers)."),
    ] = None,
) -> None:
    """Apply events, keep scores fresh and run queued jobs.

    Apply newly stored events to the customer portrait, keep stored scores fresh and run queued
    jobs (training, rescoring), continuously: run it beside API processes started with
    CLV_WORKER=off; several workers may share a PostgreSQL database."""
    import torch

    from service.background import job_runner
    from service.customers.service import ProfilePolicy
    from service.db.timeouts import Role
    from service.events.worker import Worker
    from service.logs import logging_config
    from service.privacy import PiiHasher
    from service.scoring.service import Scorer

    settings = load_settings()
    logging.config.dictConfig(logging_config(settings.log_level))
    torch.set_num_threads(settings.torch_threads)
    with (
        session_factory(settings) as factory,
        session_factory(settings, Role.worker) as events,
    ):
        scorer = Scorer(settings)
        loop = Worker(
            events,
            poll_seconds=settings.worker_poll_seconds,
            batch=settings.worker_batch,
            scorer=scorer,
            profiles=ProfilePolicy.from_settings(settings, PiiHasher.from_settings(settings)),
            retention_months=settings.event_retention_months,
        )
        jobs = job_runner(factory, settings, scorer=scorer)
        jobs.start()

        def finish(_signal: int, _frame: object) -> None:  # SIGTERM: after the current turn
            loop.request_stop()
            jobs.request_stop()

        signal.signal(signal.SIGTERM, finish)
        if parent_pid is not None:
            threading.Thread(
                target=_stop_when_orphaned, args=(parent_pid, finish), daemon=True
            ).start()
        console.print("worker running (events and jobs); Ctrl-C or SIGTERM stops it")
        try:
            loop.run()
        except KeyboardInterrupt:
            pass
        finally:
            jobs.stop()
            console.print("worker stopped")


def _stop_when_orphaned(parent_pid: int, stop: Callable[[int, object], None]) -> None:
    """Once the parent is gone (this process re-parented), stop as on SIGTERM."""
    while os.getppid() == parent_pid:
        time.sleep(1.0)
    logger.warning("clv serve (pid %d) is gone; stopping", parent_pid)
    stop(signal.SIGTERM, None)


@app.command()
def demo(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    customers: Annotated[
        int, typer.Option(min=200, help="Customers in the simulated shop.")
    ] = 2000,
    shop: Annotated[Path, typer.Option(help="Where to write the simulated shop.")] = Path(
        "data/demo-shop"
    ),
) -> None:
    """The first run: simulate, import, train, score, serve.

    Migrate the database (SQLite by default), simulate a shop whose history ends yesterday,
    import it, train a model, score every customer, create an API key and serve, printing how
    to call the API. Run again, it reuses what the database holds."""
    from service.auth import service as auth
    from service.background import job_runner
    from service.db import migrations
    from service.scoring import repository as scores

    settings = load_settings()
    migrations.upgrade(settings.database_url)
    with session_factory(settings) as factory:
        with factory() as session:
            has_champion = scores.has_champion(session)
        if not has_champion:
            days = 540
            first_day = datetime.now(UTC).date() - timedelta(days=days)
            simulate(out=shop, customers=customers, days=days, start=first_day.isoformat())
            import_events(shop)
            train(horizon_days=DEMO_HORIZON_DAYS)
        _run_jobs_showing_progress(factory, job_runner(factory, settings))
        with factory() as session, session.begin():
            name = f"demo-{datetime.now(UTC):%Y%m%d-%H%M%S}"
            _, token = auth.create_key(session, name, list(auth.Scope))
            customer = demo_customer(session)
    base = f"http://{host}:{port}"
    say = partial(console.print, highlight=False, soft_wrap=True)
    say(f"\n[bold]clv-service[/bold] on {settings.database_url}")
    say(f"API key ({name}, all scopes): [bold]{token}[/bold]")
    say(f"Swagger UI: {base}/docs (press Authorize, paste the key)\n")
    for example in demo_curl_examples(base, token, settings.currency, customer):
        say(example + "\n")
    serve(host=host, port=port, workers=1)


def _run_jobs_showing_progress(factory: sessionmaker[Session], runner: JobRunner) -> None:
    """Run the queued jobs (the new champion's rescoring of everyone) in a thread, with a bar
    of the rescoring's progress as the job writes it (at most once a second)."""
    from service.jobs import repository as job_queue
    from service.jobs.kinds import JobKind

    failures: list[BaseException] = []

    def work() -> None:
        try:
            while runner.run_once():
                pass
        except BaseException as error:  # raised again below, in the command's thread
            failures.append(error)

    thread = threading.Thread(target=work, name="clv-demo-jobs", daemon=True)
    thread.start()
    columns = (TextColumn("{task.description}"), BarColumn(), TaskProgressColumn())
    with Progress(*columns, TimeElapsedColumn(), console=console) as bar:
        task = bar.add_task("scoring every customer (attributions follow)", total=1.0)
        while thread.is_alive():
            thread.join(0.25)
            with factory() as session:
                job = job_queue.active_job(session, JobKind.rescore)
            if job is not None:
                bar.update(task, completed=job.progress)
        bar.update(task, completed=1.0)
    if failures:
        raise failures[0]


def demo_customer(session: Session) -> str:
    """The stored customer with the highest score: a good first one to look at."""
    from service.scoring import repository as scores

    best = scores.most_valuable(session)
    if best is None:
        raise typer.BadParameter("the demo database holds no scores; delete it and run again")
    return best


def demo_curl_examples(base: str, token: str, currency: str, customer: str) -> list[str]:
    """Three calls that work on the demo database, in order: a customer's score with its
    explanation, a new order for them, and the score's history (the order's rescoring in it)."""
    now = datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    event = {
        "event_id": f"demo-order-{now}",
        "customer_id": customer,
        "type": "purchase",
        "occurred_at": now,
        "amount": "42.50",
        "currency": currency,
    }
    auth_header = f"-H 'Authorization: Bearer {token}'"
    json_header = "-H 'Content-Type: application/json'"
    return [
        f"curl -s '{base}/v1/customers/{customer}/clv?explain=true' {auth_header}",
        f"curl -s -X POST {base}/v1/events {auth_header} {json_header} "
        f"-d '{json.dumps({'events': [event]})}'",
        f"curl -s {base}/v1/customers/{customer}/clv/history {auth_header}",
    ]
