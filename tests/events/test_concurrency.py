"""Racing requests over real sockets: the database, not a read-then-write, decides duplicates."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx2 as httpx
from sqlalchemy import Engine, func, select

from service.events.models import Event
from tests.conftest import KeyFactory, bearer
from tests.factories import batch, event


def test_racing_requests_with_the_same_events_store_each_once(
    live_server: str, make_key: KeyFactory, db: Engine
) -> None:
    headers = bearer(make_key("ingest"))
    shared = [event(event_id=f"shared-{i}") for i in range(200)]
    clients = 6

    def send(worker: int) -> dict[str, int]:
        own = [event(event_id=f"own-{worker}-{i}") for i in range(50)]
        body = batch(*(shared[worker * 7 :] + own + shared[: worker * 7]))
        response = httpx.post(f"{live_server}/v1/events", json=body, headers=headers, timeout=60)
        response.raise_for_status()
        result: dict[str, int] = response.json()
        return result

    with ThreadPoolExecutor(clients) as pool:
        results = list(pool.map(send, range(clients)))

    assert sum(r["accepted"] for r in results) == 200 + 50 * clients
    assert sum(r["duplicates"] for r in results) == 200 * (clients - 1)
    with db.connect() as connection:
        total = connection.scalar(select(func.count()).select_from(Event))
        distinct = connection.scalar(select(func.count(func.distinct(Event.event_id))))
    assert total == distinct == 200 + 50 * clients
