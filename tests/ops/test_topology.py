"""The scaled-out topology as processes (issue 19; what ``deploy/k8s`` runs as pods): two API
processes and two ``clv worker`` processes on one PostgreSQL, clients spreading their batches
over both APIs, and one API and one worker SIGKILLed mid-load. Nothing acknowledged is lost,
nothing is applied twice, and every customer's stored score is fresh once the load is over."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select

from service.auth import service as auth
from service.config import Settings
from service.db.session import make_session_factory
from service.events.models import Event
from service.ml.clv_model import ClvModel
from service.model_versions import service as registry
from service.scoring.models import Score, StaleScore
from tests.conftest import bearer, free_port
from tests.ops.test_crash_safety import BATCHES, CLIENTS, EVENTS_PER_BATCH, Client, stored_counts
from tests.processes import ServerProcess, WorkerProcess

pytestmark = pytest.mark.slow


def test_two_apis_and_two_workers_survive_losing_one_of_each_mid_load(
    postgres_settings: Settings, shop_model: ClvModel, tmp_path: Path
) -> None:
    url, models = postgres_settings.database_url, tmp_path / "models"
    db = create_engine(url)
    with make_session_factory(db)() as session, session.begin():
        _, token = auth.create_key(session, "load", [auth.Scope.ingest])
        champion = registry.register(session, models, shop_model, {}, "test").version
    env = {
        "CLV_DATABASE_URL": url,
        "CLV_MODEL_DIR": str(models),
        "CLV_WORKER": "off",
        "CLV_LOG_LEVEL": "WARNING",
        "CLV_WORKER_LEASE_SECONDS": "5",  # a killed worker's customers are taken over soon
    }
    workers = [WorkerProcess(env, tmp_path / f"worker-{n}.log").start() for n in range(2)]
    apis = [
        ServerProcess(free_port(), env, tmp_path / f"api-{n}.log", event_workers=0).start()
        for n in range(2)
    ]
    clients = [Client(n, [a.url for a in apis], bearer(token)) for n in range(CLIENTS)]
    deadline = time.monotonic() + 300
    threads = [threading.Thread(target=c.run, args=(deadline,)) for c in clients]
    try:
        for thread in threads:
            thread.start()
        while sum(len(c.acknowledged) for c in clients) < CLIENTS * BATCHES // 3:
            assert time.monotonic() < deadline, apis[0].output()[-3000:]
            time.sleep(0.01)
        killed = (apis[0].kill(), workers[0].kill())  # mid-load: requests and turns in flight
        for thread in threads:
            thread.join()
        while time.monotonic() < deadline:  # the surviving worker catches up
            with db.connect() as connection:
                stale = connection.scalar(select(func.count()).select_from(StaleScore))
            if stored_counts(db)[2] == 0 and stale == 0:
                break
            time.sleep(0.5)
        events, distinct, pending, orders, applied = stored_counts(db)
        with db.connect() as connection:
            stale = connection.scalar(select(func.count()).select_from(StaleScore))
            last_received = dict(
                connection.execute(
                    select(Event.customer_id, func.max(Event.received_at)).group_by(
                        Event.customer_id
                    )
                ).all()
            )
            scores = {
                row.customer_id: row
                for row in connection.execute(
                    select(Score.customer_id, Score.computed_at, Score.model_version)
                )
            }
    finally:
        for process in (*apis, *workers):
            process.stop()
        db.dispose()

    total = CLIENTS * BATCHES * EVENTS_PER_BATCH
    assert killed == (-9, -9)
    assert all(len(c.acknowledged) == BATCHES for c in clients), apis[1].output()[-3000:]
    assert sum(c.failed_attempts for c in clients) > 0  # the kill did interrupt the load
    assert (events, distinct) == (total, total)  # each stored once, retries as duplicates
    assert (pending, orders, applied) == (0, total, total)  # each applied once
    assert stale == 0, workers[1].output()[-3000:]
    named = {
        e["customer_id"] for c in clients for n in range(BATCHES) for e in c.batch(n)["events"]
    }
    assert set(last_received) == named
    assert set(last_received) - set(scores) == set()  # every customer scored
    # fresh: each score was computed, by the champion, after the customer's last event arrived
    assert all(s.model_version == champion for s in scores.values())
    assert all(scores[c].computed_at >= last_received[c] for c in scores)
