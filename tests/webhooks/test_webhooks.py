"""Webhooks: queued in the transaction of what raised them, POSTed signed to a real HTTP
endpoint, retried with backoff until it answers 2xx, given up after CLV_WEBHOOK_MAX_ATTEMPTS,
and logged at GET /v1/webhooks/deliveries."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr, ValidationError
from sqlalchemy import Engine

from service.background import job_runner
from service.config import Settings
from service.db.session import make_session_factory
from service.learning.matured import accuracy_dropped
from service.learning.schemas import Trigger
from service.learning.service import learn
from service.webhooks import service as webhooks
from tests.conftest import free_port
from tests.jobs.test_registry import queue_by_hand

SECRET = "a-shared-secret"


class Receiver:
    """An HTTP endpoint on a loopback port: answers each POST with the next status of
    ``statuses`` (the last one from then on) and records what it got."""

    def __init__(self) -> None:
        self.statuses = [200]
        self.received: list[tuple[Message, bytes]] = []  # headers: case-insensitive
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append((self.headers, body))
                status = receiver.statuses[min(len(receiver.received), len(receiver.statuses)) - 1]
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/clv"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    endpoint = Receiver()
    yield endpoint
    endpoint.server.shutdown()


@pytest.fixture
def hooked(settings: Settings, receiver: Receiver) -> Settings:
    return settings.model_copy(
        update={"webhook_url": receiver.url, "webhook_secret": SecretStr(SECRET)}
    )


def failing_job(db: Engine) -> int:
    """A queued train job whose params its handler refuses: it fails when run."""
    return queue_by_hand(db, "train", {"horizon_days": "a year"})


def deliveries(client: TestClient, admin_headers: dict[str, str]) -> list[dict[str, Any]]:
    answer = client.get("/v1/webhooks/deliveries", headers=admin_headers)
    assert answer.status_code == 200, answer.text
    found: list[dict[str, Any]] = answer.json()["deliveries"]
    return found


def test_a_failed_job_is_posted_signed_and_retried_with_backoff_until_taken(
    hooked: Settings,
    db: Engine,
    receiver: Receiver,
    client: TestClient,
    admin_headers: dict[str, str],
) -> None:
    receiver.statuses = [500, 503, 200]
    factory = make_session_factory(db)
    job_id = failing_job(db)
    assert job_runner(factory, hooked).run_once()
    start = datetime.now(UTC)

    attempts = [webhooks.deliver_due(factory, hooked, now=start)]  # 500
    attempts.append(webhooks.deliver_due(factory, hooked, now=start + timedelta(seconds=29)))
    attempts.append(webhooks.deliver_due(factory, hooked, now=start + timedelta(seconds=31)))
    attempts.append(webhooks.deliver_due(factory, hooked, now=start + timedelta(seconds=90)))
    attempts.append(webhooks.deliver_due(factory, hooked, now=start + timedelta(seconds=92)))
    attempts.append(webhooks.deliver_due(factory, hooked, now=start + timedelta(hours=2)))

    # retried after 30 s, then 60 s (CLV_WEBHOOK_RETRY_SECONDS doubling), never once taken
    assert attempts == [1, 0, 1, 0, 1, 0]
    assert len(receiver.received) == 3
    bodies = {body for _, body in receiver.received}
    assert len(bodies) == 1  # the same notification each time
    headers, body = receiver.received[-1]
    signed = headers["X-CLV-Timestamp"].encode() + b"." + body
    expected = hmac.new(SECRET.encode(), signed, hashlib.sha256).hexdigest()
    assert headers["X-CLV-Signature"] == f"sha256={expected}"
    assert headers["X-CLV-Event"] == "job.failed"
    sent = json.loads(body)
    assert sent["event"] == "job.failed"
    assert str(sent["id"]) == headers["X-CLV-Delivery"]
    assert sent["data"]["job_id"] == job_id
    assert sent["data"]["kind"] == "train"
    assert sent["data"]["error"].startswith("the job's params are not TrainParams")
    [logged] = deliveries(client, admin_headers)
    assert (logged["status"], logged["attempts"], logged["last_status_code"]) == (
        "delivered",
        3,
        200,
    )
    assert logged["body"] == sent


def test_an_endpoint_that_never_takes_it_is_given_up_after_the_last_attempt(
    hooked: Settings, db: Engine, client: TestClient, admin_headers: dict[str, str]
) -> None:
    unreachable = f"http://127.0.0.1:{free_port()}/nobody-listens"
    settings = hooked.model_copy(update={"webhook_url": unreachable, "webhook_max_attempts": 2})
    factory = make_session_factory(db)
    with factory() as session, session.begin():
        webhooks.notify(session, settings, "drift.detected", {"reasons": ["a test"]})
    start = datetime.now(UTC)

    first = webhooks.deliver_due(factory, settings, now=start)
    pending = deliveries(client, admin_headers)[0]
    second = webhooks.deliver_due(factory, settings, now=start + timedelta(minutes=1))
    third = webhooks.deliver_due(factory, settings, now=start + timedelta(hours=2))

    assert (first, second, third) == (1, 1, 0)
    assert (pending["status"], pending["attempts"]) == ("pending", 1)
    [failed] = deliveries(client, admin_headers)
    assert (failed["status"], failed["attempts"], failed["last_status_code"]) == ("failed", 2, None)
    assert "Connection refused" in failed["last_error"]
    listed = client.get("/v1/webhooks/deliveries?status=failed", headers=admin_headers)
    assert [d["id"] for d in listed.json()["deliveries"]] == [failed["id"]]


def test_a_learning_decision_is_notified_with_the_decision(
    hooked: Settings, db: Engine, client: TestClient, admin_headers: dict[str, str]
) -> None:
    decision = learn(make_session_factory(db), hooked, trigger=Trigger.demand, actor="test")

    [queued] = deliveries(client, admin_headers)
    assert decision.outcome == "skipped"  # no champion yet
    assert queued["event"] == "learning.decision"
    assert queued["status"] == "pending"
    assert queued["body"]["data"]["id"] == decision.id
    assert queued["body"]["data"]["outcome"] == "skipped"
    assert queued["body"]["data"]["reasons"] == decision.reasons


def test_nothing_is_queued_without_a_webhook_url(
    settings: Settings, db: Engine, client: TestClient, admin_headers: dict[str, str]
) -> None:
    assert settings.webhook_url is None
    assert job_runner(make_session_factory(db), settings).run_once() is False
    failing_job(db)
    assert job_runner(make_session_factory(db), settings).run_once()

    assert deliveries(client, admin_headers) == []
    assert webhooks.deliver_due(make_session_factory(db), settings) == 0


def test_a_webhook_url_needs_a_secret_and_http() -> None:
    with pytest.raises(ValidationError, match="CLV_WEBHOOK_URL needs CLV_WEBHOOK_SECRET"):
        Settings(_env_file=None, webhook_url="https://hooks.example.com/clv")
    with pytest.raises(ValidationError, match="is not an http"):
        Settings(_env_file=None, webhook_url="ftp://hooks.example.com", webhook_secret="s")


@pytest.mark.parametrize(
    ("matured", "validation", "btyd", "dropped"),
    [
        (0.60, 0.70, 0.55, False),  # within the margin, above BTYD
        (0.50, 0.70, 0.45, True),  # more than 0.15 below its validation figure
        (0.60, 0.70, 0.62, True),  # below BTYD on the same customers
        (0.60, None, None, False),  # nothing to compare with
    ],
)
def test_what_counts_as_a_drop_in_matured_accuracy(
    matured: float, validation: float | None, btyd: float | None, dropped: bool
) -> None:
    figures: dict[str, dict[str, float]] = {
        "matured_gini": {"v": matured},
        "validation_gini": {} if validation is None else {"v": validation},
        "matured_btyd_gini": {} if btyd is None else {"v": btyd},
    }
    assert accuracy_dropped(figures, "v") is dropped
