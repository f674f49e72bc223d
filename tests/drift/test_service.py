"""The drift check through the API, the job, /metrics, the CLI and the learning trigger."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from typer.testing import CliRunner

from service.auth import service as auth
from service.background import job_runner
from service.cli import app
from service.drift.service import check_drift
from service.errors import InvalidRequestError
from service.jobs import repository as jobs
from service.jobs.kinds import JobKind
from service.main import create_app
from service.reports.models import Report
from service.webhooks import service as webhooks
from tests.conftest import bearer
from tests.drift.conftest import TRAINED_DAY, DriftShop, day
from tests.prometheus import sample
from tests.webhooks.test_webhooks import SECRET, Receiver

AFTER, BEFORE = day(539), day(345)
PATH = "/v1/monitoring/drift"


def key(shop: DriftShop, scope: str) -> dict[str, str]:
    with shop.factory() as session, session.begin():
        _, token = auth.create_key(session, f"drift-{uuid.uuid4().hex[:8]}", [auth.Scope(scope)])
    return bearer(token)


def test_post_queues_a_check_that_get_and_metrics_then_serve(shop: DriftShop) -> None:
    admin, read = key(shop, "admin"), key(shop, "read")
    with TestClient(create_app(shop.settings)) as client:
        missing = client.get(PATH, headers=read)
        scrape_before = client.get("/metrics").text
        forbidden = client.post(PATH, json={}, headers=read)
        future = client.post(PATH, json={"as_of": "2999-01-01T00:00:00Z"}, headers=admin)
        queued = client.post(PATH, json={"as_of": AFTER.isoformat()}, headers=admin)
        again = client.post(PATH, json={}, headers=admin)
        job_runner(shop.factory, shop.settings).run_once()
        job = client.get(f"/v1/jobs/{queued.json()['id']}", headers=admin).json()
        found = client.get(PATH, headers=read)
        scrape = client.get("/metrics").text

    assert missing.status_code == 404
    assert "POST /v1/monitoring/drift" in missing.json()["message"]
    assert "clv_drift_detected" not in scrape_before
    assert (forbidden.status_code, future.status_code) == (403, 422)
    assert queued.status_code == 202
    assert queued.json()["kind"] == "drift"
    assert again.json()["id"] == queued.json()["id"]  # one check queued at a time
    assert job["status"] == "succeeded", job["error"]
    assert job["result"]["drifted"] is True
    report = found.json()
    assert found.status_code == 200
    assert report["id"] == job["result"]["report_id"]
    assert report["model_version"] == shop.version
    assert report["drifted"]
    assert report["reasons"]
    assert report["reference"]["window_to"].startswith(day(TRAINED_DAY).date().isoformat())
    assert report["current"]["window_to"].startswith(AFTER.date().isoformat())
    psis = [f["psi"] for f in report["features"]]
    assert psis == sorted(psis, reverse=True)
    assert not {f["feature"] for f in report["features"]} & set(report["excluded_features"])
    assert "cutoff_season_sin" in report["excluded_features"]
    assert sample(scrape, "clv_drift_detected") == 1
    assert sample(scrape, "clv_score_drift_psi") == pytest.approx(report["score"]["psi"])
    assert sample(scrape, "clv_purchase_rate_change") == pytest.approx(
        report["purchase_rate"]["change"]
    )
    orders = next(f for f in report["features"] if f["feature"] == "orders_90d")
    assert sample(scrape, "clv_feature_drift_psi", feature="orders_90d") == pytest.approx(
        orders["psi"]
    )
    organic = sample(
        scrape, "clv_segment_purchase_rate_change", attribute="acquisition_channel", level="organic"
    )
    assert organic < -0.3
    assert sample(scrape, "clv_drift_check_timestamp_seconds") > AFTER.timestamp()


def test_drift_queues_learning_only_when_asked_to(shop: DriftShop) -> None:
    learning = shop.settings.model_copy(update={"learning_on_drift": True})

    ignored = check_drift(shop.factory, shop.settings, as_of=AFTER, actor="test")
    with shop.factory() as session:
        assert jobs.active_job(session, JobKind.learn) is None
    quiet = check_drift(shop.factory, learning, as_of=BEFORE, actor="test")
    with shop.factory() as session:
        assert jobs.active_job(session, JobKind.learn) is None
    acted = check_drift(shop.factory, learning, as_of=AFTER, actor="test")
    with shop.factory() as session:
        queued = jobs.active_job(session, JobKind.learn)

    assert ignored.drifted
    assert ignored.learning_job_id is None
    assert not quiet.drifted
    assert quiet.learning_job_id is None
    assert queued is not None
    assert acted.learning_job_id == queued.id
    assert queued.params == {"trigger": "drift"}


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    endpoint = Receiver()
    yield endpoint
    endpoint.server.shutdown()


def test_drift_found_is_posted_to_the_webhook_and_no_drift_is_not(
    shop: DriftShop, receiver: Receiver
) -> None:
    hooked = shop.settings.model_copy(
        update={"webhook_url": receiver.url, "webhook_secret": SecretStr(SECRET)}
    )

    quiet = check_drift(shop.factory, hooked, as_of=BEFORE, actor="test")
    sent_after_quiet = webhooks.deliver_due(shop.factory, hooked)
    found = check_drift(shop.factory, hooked, as_of=AFTER, actor="test")
    sent_after_drift = webhooks.deliver_due(shop.factory, hooked)

    assert not quiet.drifted
    assert sent_after_quiet == 0
    assert found.drifted
    assert sent_after_drift == 1
    [(headers, body)] = receiver.received
    assert headers["X-CLV-Event"] == "drift.detected"
    assert headers["X-CLV-Signature"] == webhooks.signature(
        SECRET, headers["X-CLV-Timestamp"], body
    )
    data = json.loads(body)["data"]
    assert data["report_id"] == found.id
    assert data["model_version"] == shop.version
    assert data["reasons"] == found.reasons != []


def test_a_check_with_nothing_to_compare_is_refused(shop: DriftShop) -> None:
    def check(number: int) -> None:
        check_drift(shop.factory, shop.settings, as_of=day(number), actor="test")

    with pytest.raises(InvalidRequestError, match="before the end of champion"):
        check(TRAINED_DAY - 1)
    with pytest.raises(InvalidRequestError, match="no customer has an event in the 90 days"):
        check(540 + 91)  # the events end on day 540
    with pytest.raises(InvalidRequestError, match="in the future"):
        check(5_000)


def test_without_a_champion_there_is_nothing_to_check(
    client: TestClient, admin_headers: dict[str, str]
) -> None:
    posted = client.post(PATH, json={}, headers=admin_headers)
    read = client.get(PATH, headers=admin_headers)

    assert posted.status_code == 404
    assert "no champion" in posted.json()["message"]
    assert read.status_code == 404


def test_clv_drift_prints_and_stores_the_check(
    shop: DriftShop, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLV_DATABASE_URL", shop.settings.database_url)
    monkeypatch.setenv("CLV_MODEL_DIR", str(shop.settings.model_dir))
    monkeypatch.setenv("COLUMNS", "160")

    result = CliRunner().invoke(app, ["drift", "--as-of", AFTER.date().isoformat(), "--top", "3"])

    assert result.exit_code == 0, result.output
    assert "acquisition_channel=organic" in result.output
    assert "predicted spend (clv)" in result.output
    assert "drift: champion" in result.output
    assert "no drift" not in result.output  # the verdict: drift after the shift
    assert "stored as report" in result.output
    with shop.factory() as session:
        assert session.query(Report).count() == 1
