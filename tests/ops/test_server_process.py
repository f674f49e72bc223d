"""``clv serve`` as a real process: graceful shutdown finishes requests in flight; the JSON logs
carry the request context, never a key or personal data; with ``--workers 2`` on PostgreSQL,
idempotency holds across processes, a promotion reaches both and metrics add up."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
from sqlalchemy import Engine, create_engine, func, select, update

from service.auth import service as auth
from service.config import Settings
from service.db.session import make_session_factory
from service.events.models import Event
from service.jobs.models import Job
from service.ml.clv_model import ClvModel
from service.model_versions import service as registry
from service.portrait.models import CustomerDay
from tests.conftest import KeyFactory, bearer, free_port
from tests.factories import batch, event
from tests.processes import ServerProcess
from tests.prometheus import sample

pytestmark = pytest.mark.slow


def environment(settings: Settings, **extra: str) -> dict[str, str]:
    return {"CLV_DATABASE_URL": settings.database_url, "CLV_LOG_LEVEL": "INFO", **extra}


def test_sigterm_finishes_the_request_in_flight_then_exits(
    settings: Settings, make_key: KeyFactory, db: Engine, tmp_path: Path
) -> None:
    server = ServerProcess(free_port(), environment(settings), tmp_path / "server.log").start()
    body = httpx.Request("POST", "/", json=batch(event(event_id="in-flight"))).read()
    head = (
        f"POST /v1/events HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {make_key('ingest')}\r\nContent-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    )
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=30) as connection:
            connection.sendall(head.encode() + body[:10])  # the request has begun ...
            time.sleep(0.5)
            assert server.process is not None
            server.process.send_signal(signal.SIGTERM)  # ... when the server is told to stop
            refuses_new_connections(server.url)
            connection.sendall(body[10:])
            answer = connection.makefile("rb").read().decode()
        exit_status = server.process.wait(30)
    finally:
        server.kill()

    assert answer.startswith("HTTP/1.1 200"), answer
    assert '"accepted":1' in answer.replace(" ", "")
    assert exit_status in (0, -signal.SIGTERM), server.output()
    with db.connect() as connection:
        assert connection.scalar(select(func.count()).where(Event.event_id == "in-flight")) == 1


def refuses_new_connections(url: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            httpx.get(f"{url}/healthz", timeout=2)
        except httpx.TransportError:
            return
        assert time.monotonic() < deadline, "still accepting connections after SIGTERM"
        time.sleep(0.1)


def test_logs_are_json_with_the_request_context_and_no_key_or_personal_data(
    settings: Settings, db: Engine, tmp_path: Path
) -> None:
    with make_session_factory(db)() as session, session.begin():
        _, token = auth.create_key(session, "shop-backend", [auth.Scope.admin])
    email, phone = "ann.private@example.com", "+1 555 0199"
    headers = bearer(token)
    with ServerProcess(free_port(), environment(settings), tmp_path / "server.log") as server:
        with httpx.Client(base_url=server.url, headers=headers) as http:
            answers = [
                http.patch(
                    "/v1/customers/ann",
                    json={"source": "crm", "attributes": {"email": email, "phone": phone}},
                ),
                http.post(
                    "/v1/events",
                    json=batch(event(customer_id="ann", properties={"email": email})),
                ),
                http.get("/v1/customers/ann"),
                http.get("/v1/customers/nobody", headers={"X-Request-ID": "trace-42"}),
                http.post("/v1/events", json={"events": [{"customer_id": email}]}),
                http.delete("/v1/customers/ann"),
            ]
        server.kill(signal.SIGTERM)
    output, entries = server.output(), server.log_entries()

    requests = [e for e in entries if e.get("route", "").startswith("/v1/")]
    assert [(e["route"], e["status"]) for e in requests] == [
        ("/v1/customers/{customer_id}", 200),
        ("/v1/events", 200),
        ("/v1/customers/{customer_id}", 200),
        ("/v1/customers/{customer_id}", 404),
        ("/v1/events", 200),  # a batch with an invalid event: its rejection is listed
        ("/v1/customers/{customer_id}", 204),
    ]
    assert [e["request_id"] for e in requests] == [a.headers["x-request-id"] for a in answers]
    assert requests[3]["request_id"] == "trace-42"
    assert all(e["api_key"] == "shop-backend" for e in requests)
    assert all(isinstance(e["latency_ms"], float) and e["level"] == "INFO" for e in requests)
    assert token not in output
    assert token.split("_", 2)[2] not in output  # the secret part, which may hold "_"
    for secret in (email, phone):
        assert secret not in output
        assert all(secret not in a.text for a in answers), secret


def concurrently(calls: int, threads: int, call: Callable[[httpx.Client], Any]) -> list[Any]:
    """``calls`` calls spread over ``threads`` threads, each call on a new connection (so the
    kernel hands them to either worker process)."""
    results: list[Any] = []
    lock = threading.Lock()

    def work(share: int) -> None:
        for _ in range(share):
            with httpx.Client(headers={"Connection": "close"}, timeout=30) as http:
                result = call(http)
            with lock:
                results.append(result)

    workers = [threading.Thread(target=work, args=(calls // threads,)) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return results


SERVING_OK = {"method": "GET", "route": "/v1/serving", "status": "200"}


def test_two_worker_processes_share_idempotency_promotions_and_metrics(
    postgres_settings: Settings, shop_model: ClvModel, tmp_path: Path
) -> None:
    settings = postgres_settings.model_copy(update={"model_dir": tmp_path / "models"})
    db = create_engine(settings.database_url)
    with make_session_factory(db)() as session, session.begin():
        first = registry.register(session, settings.model_dir, shop_model, {}, "test").version
        second = registry.register(session, settings.model_dir, shop_model, {}, "test").version
        session.execute(update(Job).values(status="cancelled"))  # no rescoring needed here
        _, token = auth.create_key(session, "multi", [auth.Scope.admin])
    headers = bearer(token)
    env = environment(settings, CLV_MODEL_DIR=str(settings.model_dir), CLV_LOG_LEVEL="WARNING")
    server = ServerProcess(free_port(), env, tmp_path / "server.log", workers=2)
    same_batch = batch(*(event(event_id=f"shared-{i}", customer_id="c-1") for i in range(20)))

    def ingest(http: httpx.Client) -> dict[str, Any]:
        answer: dict[str, Any] = http.post(
            f"{server.url}/v1/events", json=same_batch, headers=headers
        ).json()
        return answer

    def serving(http: httpx.Client) -> dict[str, Any]:
        answer: dict[str, Any] = http.get(f"{server.url}/v1/serving", headers=headers).json()
        return answer

    with server:
        ingested = concurrently(32, 8, ingest)
        before = concurrently(40, 8, serving)
        with httpx.Client(base_url=server.url, headers=headers) as http:
            http.post(f"/v1/models/{second}/promote", json={}).raise_for_status()
        after = concurrently(40, 8, serving)
        deadline = time.monotonic() + 30
        while len({a["pid"] for a in after}) < 2 and time.monotonic() < deadline:
            after += concurrently(16, 8, serving)  # until both processes have answered
        served = len(before) + len(after)
        while True:  # a request is counted just after its answer is sent
            scrapes = concurrently(8, 4, lambda http: http.get(f"{server.url}/metrics").text)
            counted = {sample(s, "clv_http_requests_total", **SERVING_OK) for s in scrapes}
            if counted == {served} or time.monotonic() > deadline:
                break
            time.sleep(0.2)
    with db.connect() as connection:
        stored = connection.scalar(select(func.count()).where(Event.event_id.like("shared-%")))
    db.dispose()

    assert sum(a["accepted"] for a in ingested) == 20
    assert sum(a["duplicates"] for a in ingested) == 20 * 31
    assert stored == 20
    assert {a["serving"] for a in before} == {first}
    assert {a["serving"] for a in after} == {second}  # no restart: every process follows
    pids = {a["pid"] for a in after}
    assert len(pids) == 2  # both processes answered after the promotion
    for scrape in scrapes:  # whichever process answers the scrape counts for both
        assert sample(scrape, "clv_http_requests_total", **SERVING_OK) == served
        ingest_route = {"method": "POST", "route": "/v1/events", "status": "200"}
        assert sample(scrape, "clv_http_requests_total", **ingest_route) == 32
        assert sample(scrape, "clv_events_total", outcome="accepted") == 20
        for pid in pids:
            loaded = {"alias": "champion", "version": second, "pid": str(pid)}
            assert sample(scrape, "clv_model_loaded", **loaded) == 1


def _event_workers(server: ServerProcess) -> list[int]:
    """The pids of ``clv worker`` processes ``clv serve`` runs."""
    assert server.process is not None
    found = []
    for task in Path(f"/proc/{server.process.pid}/task").iterdir():  # a thread's children
        with contextlib.suppress(FileNotFoundError):  # a thread or a child that just ended
            for pid in (task / "children").read_text().split():
                if b"worker" in Path(f"/proc/{pid}/cmdline").read_bytes():
                    found.append(int(pid))
    return found


def _applied(db: Engine, customer: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        with db.connect() as connection:
            found = connection.scalar(
                select(func.count())
                .select_from(CustomerDay)
                .where(CustomerDay.customer_id == customer)
            )
        if found:
            return
        assert time.monotonic() < deadline, f"{customer}'s events were never applied"
        time.sleep(0.2)


def test_event_workers_apply_events_beside_the_api_and_are_restarted_when_they_die(
    settings: Settings, make_key: KeyFactory, db: Engine, tmp_path: Path
) -> None:
    """``clv serve`` as it starts by default: the API process runs no worker thread; one
    ``clv worker`` process applies the events, and one killed outright is replaced."""
    server = ServerProcess(
        free_port(), environment(settings), tmp_path / "server.log", event_workers=None
    ).start()
    call: dict[str, Any] = {"headers": bearer(make_key("ingest")), "timeout": 30}
    try:
        (first,) = _event_workers(server)
        sent = httpx.post(f"{server.url}/v1/events", json=batch(event(customer_id="a")), **call)
        assert sent.json()["accepted"] == 1
        _applied(db, "a")
        os.kill(first, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while _event_workers(server) in ([], [first]):
            assert time.monotonic() < deadline, server.output()
            time.sleep(0.2)
        sent = httpx.post(f"{server.url}/v1/events", json=batch(event(customer_id="b")), **call)
        assert sent.json()["accepted"] == 1
        _applied(db, "b")
        workers = _event_workers(server)
        assert server.process is not None
        server.process.send_signal(signal.SIGTERM)  # to clv serve alone, not its group
        assert server.process.wait(30) in (0, -signal.SIGTERM), server.output()
        deadline = time.monotonic() + 15
        while any(Path(f"/proc/{pid}").exists() for pid in workers):  # they stop by themselves
            assert time.monotonic() < deadline, f"event workers {workers} outlived clv serve"
            time.sleep(0.2)
    finally:
        server.kill()
    assert "restarting it" in server.output()
