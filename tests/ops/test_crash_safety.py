"""Nothing acknowledged is lost and nothing is counted twice when the server is killed outright
(SIGKILL: no shutdown, no clean-up) in the middle of a stream of event batches, and clients
that retry what was not acknowledged end with every event stored exactly once."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
from sqlalchemy import Engine, create_engine, func, select

from service.auth import service as auth
from service.config import Settings
from service.db.session import make_session_factory
from service.events.models import Event, PendingEvent
from service.portrait.models import CustomerDay
from tests.conftest import bearer, free_port
from tests.factories import BASE_TIME, batch, event
from tests.processes import ServerProcess

pytestmark = pytest.mark.slow

CLIENTS, BATCHES, EVENTS_PER_BATCH = 4, 40, 50


@dataclass
class Client:
    """Sends its batches in order; each is re-sent until a response acknowledges it. With
    several ``urls`` (replicas behind a load balancer), each attempt goes to the next in turn."""

    number: int
    urls: list[str]
    headers: dict[str, str]
    acknowledged: dict[int, dict[str, Any]] = field(default_factory=dict)
    failed_attempts: int = 0

    def batch(self, n: int) -> dict[str, Any]:
        return batch(
            *(
                event(
                    event_id=f"c{self.number}-b{n}-e{i}",
                    customer_id=f"cust-{(self.number * 7 + n + i) % 150}",
                    occurred_at=BASE_TIME - timedelta(minutes=n * EVENTS_PER_BATCH + i),
                    amount="1.00",
                )
                for i in range(EVENTS_PER_BATCH)
            )
        )

    def run(self, deadline: float) -> None:
        turn = self.number
        with httpx.Client(headers=self.headers, timeout=10) as http:
            for n in range(BATCHES):
                body = self.batch(n)
                while time.monotonic() < deadline:
                    turn += 1
                    try:
                        url = self.urls[turn % len(self.urls)]
                        response = http.post(f"{url}/v1/events", json=body)
                    except httpx.TransportError:
                        response = None
                    if response is not None and response.status_code == 200:
                        self.acknowledged[n] = response.json()
                        break
                    self.failed_attempts += 1
                    time.sleep(0.05)


def stored_counts(db: Engine) -> tuple[int, int, int, int, int]:
    with db.connect() as connection:
        events = connection.scalar(select(func.count()).select_from(Event))
        distinct = connection.scalar(select(func.count(func.distinct(Event.event_id))))
        pending = connection.scalar(select(func.count()).select_from(PendingEvent))
        orders, applied = connection.execute(
            select(func.sum(CustomerDay.orders), func.sum(CustomerDay.events))
        ).one()
    return (
        int(events or 0),
        int(distinct or 0),
        int(pending or 0),
        int(orders or 0),
        int(applied or 0),
    )


def test_sigkill_mid_stream_loses_no_acknowledged_event_and_retries_store_each_once(
    postgres_settings: Settings, tmp_path: Path
) -> None:
    db = create_engine(postgres_settings.database_url)
    with make_session_factory(db)() as session, session.begin():
        _, token = auth.create_key(session, "stream", [auth.Scope.ingest])
    env = {"CLV_DATABASE_URL": postgres_settings.database_url, "CLV_LOG_LEVEL": "WARNING"}
    server = ServerProcess(free_port(), env, tmp_path / "server.log").start()
    clients = [Client(n, [server.url], bearer(token)) for n in range(CLIENTS)]
    deadline = time.monotonic() + 240
    threads = [threading.Thread(target=c.run, args=(deadline,)) for c in clients]
    try:
        for thread in threads:
            thread.start()
        while sum(len(c.acknowledged) for c in clients) < CLIENTS * BATCHES // 3:
            assert time.monotonic() < deadline, server.output()[-3000:]
            time.sleep(0.01)
        exit_status = server.kill()  # mid-stream: every client has requests in flight
        server.start()
        for thread in threads:
            thread.join()
        while stored_counts(db)[2] and time.monotonic() < deadline:  # the worker catches up
            time.sleep(0.2)
        events, distinct, pending, orders, applied = stored_counts(db)
    finally:
        server.stop()
        db.dispose()

    total = CLIENTS * BATCHES * EVENTS_PER_BATCH
    assert exit_status == -9
    assert all(len(c.acknowledged) == BATCHES for c in clients), server.output()[-3000:]
    assert sum(c.failed_attempts for c in clients) > 0  # the kill did interrupt the stream
    # Every event stored once: the ones a killed request had committed came back as
    # duplicates when retried, never as a second copy.
    assert (events, distinct) == (total, total)
    answers = [answer for c in clients for answer in c.acknowledged.values()]
    assert sum(a["accepted"] + a["duplicates"] for a in answers) == total
    assert all(a["rejected"] == 0 for a in answers)
    # ... and applied to the portrait exactly once (all are purchases).
    assert (pending, orders, applied) == (0, total, total)
