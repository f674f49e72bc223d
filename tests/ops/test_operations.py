"""Probes, metrics, request ids and the JSON error shape."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import httpx2 as httpx
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

from service.auth import service as auth
from service.config import Settings
from service.db.session import make_engine, make_session_factory
from service.events.models import Event
from service.portrait.models import CustomerDay
from tests.conftest import POSTGRES_URL, KeyFactory, bearer, serve_app
from tests.factories import batch, event
from tests.prometheus import sample


def test_liveness_and_readiness(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = {
        "status": "ok",
        "pending_events": 0,
        "stale_scores": 0,
        "unexplained_scores": 0,
        "dead_letters": 0,
    }
    assert client.get("/readyz").json() == ready


def test_every_response_carries_a_request_id_also_in_error_bodies(client: TestClient) -> None:
    ok = client.get("/healthz")
    supplied = client.get("/healthz", headers={"X-Request-ID": "trace-123"})
    insane = client.get("/healthz", headers={"X-Request-ID": "no spaces; or <html>"})
    error = client.get("/v1/customers/c-1")

    assert len(ok.headers["x-request-id"]) == 32
    assert supplied.headers["x-request-id"] == "trace-123"
    assert insane.headers["x-request-id"] != "no spaces; or <html>"
    assert error.json()["request_id"] == error.headers["x-request-id"]


def test_unknown_routes_and_methods_answer_json_errors(client: TestClient) -> None:
    missing = client.get("/v1/nothing-here")
    wrong_method = client.put("/v1/events")

    assert (missing.status_code, missing.json()["code"]) == (404, "not_found")
    assert (wrong_method.status_code, wrong_method.json()["code"]) == (405, "method_not_allowed")
    assert missing.json()["message"]


def test_metrics_count_requests_per_route_and_event_outcomes(
    client: TestClient, make_key: KeyFactory
) -> None:
    route = {"method": "POST", "route": "/v1/events", "status": "200"}
    outcomes = ("accepted", "duplicate", "rejected")
    scrape = client.get("/metrics").text
    requests_before = sample(scrape, "clv_http_requests_total", **route)
    before = {o: sample(scrape, "clv_events_total", outcome=o) for o in outcomes}
    body = batch(event(event_id="m1"), event(event_id="m1"), event(event_id="m2", amount="-1"))
    client.post("/v1/events", json=body, headers=bearer(make_key("ingest")))
    scrape = client.get("/metrics").text

    assert sample(scrape, "clv_http_requests_total", **route) == requests_before + 1
    for outcome in outcomes:
        assert sample(scrape, "clv_events_total", outcome=outcome) == before[outcome] + 1
    latency = {"method": "POST", "route": "/v1/events", "le": "0.1"}
    assert sample(scrape, "clv_http_request_duration_seconds_bucket", **latency) >= 1
    # Read from the database at scrape time: one queued event, no jobs yet.
    assert sample(scrape, "clv_pending_events") == 1
    waited = sample(scrape, "clv_pending_events_oldest_seconds")  # since it was received
    assert 0 < waited < 60
    time.sleep(0.3)
    assert sample(client.get("/metrics").text, "clv_pending_events_oldest_seconds") > waited
    assert sample(scrape, "clv_stale_scores") == 0
    assert sample(scrape, "clv_database_up") == 1


@contextmanager
def connections_refused(database_url: str) -> Iterator[None]:
    """A real outage of one PostgreSQL database: new connections refused, open ones killed."""
    name = make_url(database_url).database
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false'))
            connection.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = :name AND pid <> pg_backend_pid()"
                ),
                {"name": name},
            )
        yield
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS true'))
        admin.dispose()


@dataclass
class Load:
    """Clients sending event batches and reading a score until stopped, noting every answer."""

    url: str
    headers: dict[str, str]
    statuses: Counter[int] = field(default_factory=Counter)
    bad_errors: list[str] = field(default_factory=list)
    acknowledged: set[str] = field(default_factory=set)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self, number: int) -> None:
        with httpx.Client(base_url=self.url, headers=self.headers, timeout=10) as http:
            n = 0
            while not self.stop.is_set():
                n += 1
                ids = [f"load{number}-{n}-{i}" for i in range(5)]
                body = batch(*(event(event_id=i, customer_id=f"c-{number}") for i in ids))
                self.note(http.post("/v1/events", json=body), ids)
                self.note(http.get(f"/v1/customers/c-{number}/clv"), [])
                time.sleep(0.01)

    def note(self, response: httpx.Response, ids: list[str]) -> None:
        self.statuses[response.status_code] += 1
        if response.status_code == 200 and ids:
            self.acknowledged.update(ids)
        elif response.status_code == 503:
            body = response.json()
            if body["code"] != "database_unavailable" or response.headers["retry-after"] != "5":
                self.bad_errors.append(response.text)
        elif response.status_code != 404:  # 404: no champion to score with, that is all
            self.bad_errors.append(f"{response.status_code} {response.text}")


def test_database_outage_under_load_gives_503_with_retry_after_and_recovers_without_restart(
    postgres_settings: Settings,
) -> None:
    settings = postgres_settings.model_copy(update={"worker": "embedded"})
    engine = make_engine(settings)
    with make_session_factory(engine)() as session, session.begin():
        _, token = auth.create_key(session, "outage", [auth.Scope.admin])

    with serve_app(settings) as url:
        load = Load(url, bearer(token))
        clients = [threading.Thread(target=load.run, args=(n,)) for n in range(4)]
        for client in clients:
            client.start()
        time.sleep(1.0)
        with connections_refused(settings.database_url):
            time.sleep(0.5)
            during = load.statuses.copy()
            ready = httpx.get(f"{url}/readyz")
            alive = httpx.get(f"{url}/healthz")
            scrape = httpx.get(f"{url}/metrics")
            score = httpx.get(f"{url}/v1/customers/c-0/clv", headers=load.headers)
            time.sleep(1.5)
        time.sleep(1.5)  # service returns by itself: no restart
        load.stop.set()
        for client in clients:
            client.join()
        ready_again = httpx.get(f"{url}/readyz")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # the embedded worker catches up after its backoff
            with engine.connect() as connection:
                stored = set(connection.scalars(select(Event.event_id)))
                applied = connection.scalar(select(func.sum(CustomerDay.events)))
            if applied == len(load.acknowledged):
                break
            time.sleep(0.2)
    engine.dispose()

    assert load.bad_errors == []
    assert load.statuses[500] == 0
    assert load.statuses[503] > 0
    assert load.statuses[200] > during[200] > 0  # before the outage and after it
    assert (ready.status_code, ready.json()["code"]) == (503, "not_ready")
    assert alive.status_code == 200
    assert scrape.status_code == 200
    assert "clv_database_up 0.0" in scrape.text
    assert score.status_code == 503
    assert "scores" in score.json()["message"]
    assert ready_again.status_code == 200
    assert load.acknowledged <= stored
    assert applied == len(load.acknowledged)
