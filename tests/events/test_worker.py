"""The worker: the portrait follows ingestion within a second, each event applied exactly once,
even with workers side by side, a batch rolled back, or the customer erased meanwhile."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from service.config import Settings
from service.db.session import make_session_factory
from service.events import queue
from service.events.models import PendingEvent
from service.events.worker import drain, process_pending
from service.main import create_app
from service.portrait.models import CustomerDay
from tests.conftest import KeyFactory, bearer
from tests.factories import batch, event, purchases


def pending(db: Engine) -> int:
    with make_session_factory(db)() as session:
        return queue.pending_count(session)


def orders_stored(db: Engine, customer_id: str | None = None) -> int:
    query = select(func.coalesce(func.sum(CustomerDay.orders), 0))
    if customer_id:
        query = query.where(CustomerDay.customer_id == customer_id)
    with db.connect() as connection:
        return int(connection.scalar(query) or 0)


def test_the_embedded_worker_updates_the_portrait_within_a_second(
    settings: Settings, make_key: KeyFactory
) -> None:
    embedded = settings.model_copy(update={"worker": "embedded", "worker_poll_seconds": 0.05})
    headers = bearer(make_key("ingest", "read"))
    with TestClient(create_app(embedded)) as client:
        sent = time.perf_counter()
        client.post("/v1/events", json=batch(*purchases("c", (0, "5"), (3, "7"))), headers=headers)
        while True:
            features = client.get("/v1/customers/c/features", headers=headers)
            if features.status_code == 200 and features.json()["features"]["orders_total"] == 2:
                break
            assert time.perf_counter() - sent < 1.0, "the portrait lagged more than a second"
            time.sleep(0.02)


def test_side_by_side_workers_apply_each_event_once(
    client: TestClient, make_key: KeyFactory, db: Engine
) -> None:
    headers = bearer(make_key("ingest"))
    for customer in range(40):
        body = batch(*[event(customer_id=f"c{customer}", amount="1") for _ in range(25)])
        client.post("/v1/events", json=body, headers=headers)
    assert pending(db) == 1000
    factory = make_session_factory(db)
    threads = [threading.Thread(target=drain, args=(factory, 37)) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert pending(db) == 0
    assert orders_stored(db) == 1000


def test_a_batch_that_fails_leaves_its_events_queued(
    client: TestClient, make_key: KeyFactory, db: Engine
) -> None:
    client.post(
        "/v1/events",
        json=batch(*purchases("c", (0, "1"), (1, "2"))),
        headers=bearer(make_key("ingest")),
    )
    factory = make_session_factory(db)
    with factory() as session:
        assert len(queue.claim_events(session, 10).seqs) == 2
        session.rollback()  # a worker that died mid-batch

    assert pending(db) == 2
    assert process_pending(factory, 10) == 2
    assert (pending(db), orders_stored(db)) == (0, 2)


def test_erasure_removes_queued_events_so_nothing_comes_back(
    client: TestClient, make_key: KeyFactory, db: Engine, apply_pending: Callable[[], int]
) -> None:
    headers = bearer(make_key("admin"))
    client.post(
        "/v1/events",
        json=batch(*purchases("gone", (0, "1")), *purchases("kept", (0, "1"))),
        headers=headers,
    )

    assert client.delete("/v1/customers/gone", headers=headers).status_code == 204
    assert apply_pending() == 1  # only the other customer's event is left to apply
    assert orders_stored(db, "gone") == 0
    assert orders_stored(db, "kept") == 1
    with db.connect() as connection:
        assert connection.scalar(select(func.count()).select_from(PendingEvent)) == 0
