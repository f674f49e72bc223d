"""Probes, metrics, request ids and the JSON error shape."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from service.auth import service as auth
from service.config import Settings
from service.db.session import make_engine, make_session_factory
from service.main import create_app
from tests.conftest import POSTGRES_URL, KeyFactory, bearer
from tests.factories import batch, event


def test_liveness_and_readiness(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {"status": "ok"}


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
    def sample(name: str, labels: str) -> float:
        for line in client.get("/metrics").text.splitlines():
            if line.startswith(f"{name}{{{labels}}}"):
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    route = 'method="POST",route="/v1/events",status="200"'
    before = {
        "requests": sample("clv_http_requests_total", route),
        "accepted": sample("clv_events_total", 'outcome="accepted"'),
        "duplicate": sample("clv_events_total", 'outcome="duplicate"'),
        "rejected": sample("clv_events_total", 'outcome="rejected"'),
    }
    body = batch(event(event_id="m1"), event(event_id="m1"), event(event_id="m2", amount="-1"))
    client.post("/v1/events", json=body, headers=bearer(make_key("ingest")))

    assert sample("clv_http_requests_total", route) == before["requests"] + 1
    assert sample("clv_events_total", 'outcome="accepted"') == before["accepted"] + 1
    assert sample("clv_events_total", 'outcome="duplicate"') == before["duplicate"] + 1
    assert sample("clv_events_total", 'outcome="rejected"') == before["rejected"] + 1
    assert (
        'clv_http_request_duration_seconds_bucket{le="0.1",method="POST",route="/v1/events"}'
        in (client.get("/metrics").text)
    )


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


def test_database_outage_gives_503_with_retry_after_and_recovers_without_restart(
    postgres_settings: Settings,
) -> None:
    settings = postgres_settings
    engine = make_engine(settings)
    with make_session_factory(engine)() as session, session.begin():
        _, token = auth.create_key(session, "outage", [auth.Scope.ingest])
    engine.dispose()
    headers = bearer(token)

    with TestClient(create_app(settings)) as client:
        assert client.post("/v1/events", json=batch(event()), headers=headers).status_code == 200
        with connections_refused(settings.database_url):
            ready = client.get("/readyz")
            alive = client.get("/healthz")
            ingest = client.post("/v1/events", json=batch(event()), headers=headers)
        ready_again = client.get("/readyz")
        ingest_again = client.post("/v1/events", json=batch(event()), headers=headers)

    assert (ready.status_code, ready.json()["code"]) == (503, "not_ready")
    assert alive.status_code == 200
    assert ingest.status_code == 503
    assert ingest.json()["code"] == "database_unavailable"
    assert ingest.headers["retry-after"] == "5"
    assert ready_again.status_code == 200
    assert ingest_again.status_code == 200
