"""Stored scores stay fresh: new events and attribute changes rescore the customer (through the
worker), a new champion rescores everyone in the background while reads go on, every change is
in the history, and erasure takes scores with it."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx2
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from service.db.session import make_session_factory
from service.jobs.models import Job
from service.jobs.runner import JobRunner
from service.jobs.worker import drain
from service.main import create_app
from service.ml.clv_model import ClvModel
from service.model_versions import service as registry
from service.scoring.models import Score
from service.scoring.service import Scorer, refresh_stale
from tests.conftest import KeyFactory, bearer, serve_app
from tests.customers.test_profiles import count_rows_about
from tests.scoring.conftest import ScoredShop


def _top_customer(db: Engine) -> str:
    with make_session_factory(db)() as session:
        return str(session.scalar(select(Score.customer_id).order_by(Score.clv.desc()).limit(1)))


def _order(customer: str, event_id: str, amount: str = "250.00") -> dict[str, Any]:
    return {
        "event_id": event_id,
        "customer_id": customer,
        "type": "purchase",
        "occurred_at": datetime.now(UTC).isoformat(),
        "amount": amount,
    }


def test_new_events_rescore_the_customer_within_seconds_through_the_embedded_worker(
    scored_shop: ScoredShop, db: Engine, make_key: KeyFactory
) -> None:
    settings = scored_shop.settings.model_copy(
        update={"worker": "embedded", "worker_poll_seconds": 0.05}
    )
    headers = bearer(make_key("read", "ingest"))
    customer = _top_customer(db)
    with serve_app(settings) as url, httpx2.Client(base_url=url, headers=headers) as client:
        before = client.get(f"/v1/customers/{customer}/clv").json()
        sent = time.monotonic()
        accepted = client.post("/v1/events", json={"events": [_order(customer, "fresh-1")]})
        assert accepted.json()["accepted"] == 1
        history: list[dict[str, Any]] = []
        while time.monotonic() - sent < 10:
            history = client.get(f"/v1/customers/{customer}/clv/history").json()["entries"]
            if history[0]["trigger"] == "events":
                break
            time.sleep(0.02)
        elapsed = time.monotonic() - sent
        after = client.get(f"/v1/customers/{customer}/clv?explain=true").json()

    assert history[0]["trigger"] == "events"
    assert elapsed < 5  # bench/score.py measures the p99 (target: 1 s)
    assert [entry["trigger"] for entry in history[1:]] == ["model"]
    assert history[0]["model_version"] == scored_shop.version
    assert after["source"] == "stored"
    assert after["as_of"] > before["as_of"]
    assert after["clv"] == history[0]["clv"]
    assert after["explanation"] is not None


def test_attribute_changes_mark_the_customer_stale_and_the_worker_rescores(
    scored_shop: ScoredShop, db: Engine, make_key: KeyFactory
) -> None:
    headers = bearer(make_key("read", "ingest"))
    customer = _top_customer(db)
    factory = make_session_factory(db)
    with TestClient(create_app(scored_shop.settings)) as client:
        client.patch(
            f"/v1/customers/{customer}",
            json={"source": "crm", "attributes": {"acquisition_channel": "paid_social"}},
            headers=headers,
        )
        rescored = refresh_stale(factory, Scorer(scored_shop.settings))
        entries = client.get(f"/v1/customers/{customer}/clv/history", headers=headers).json()

    assert rescored == 1
    assert [e["trigger"] for e in entries["entries"]] == ["attributes", "model"]


def test_an_order_stamped_a_little_ahead_is_in_the_score_it_triggers(
    scored_shop: ScoredShop, db: Engine, make_key: KeyFactory
) -> None:
    headers = bearer(make_key("read", "ingest"))
    customer = _top_customer(db)
    factory = make_session_factory(db)
    ahead = datetime.now(UTC) + timedelta(minutes=2)  # within CLV_MAX_FUTURE_SKEW_SECONDS
    order = {**_order(customer, "ahead-1"), "occurred_at": ahead.isoformat()}
    with TestClient(create_app(scored_shop.settings)) as client:
        before = client.get(f"/v1/customers/{customer}/clv?explain=true", headers=headers).json()
        assert (
            client.post("/v1/events", json={"events": [order]}, headers=headers).json()["accepted"]
            == 1
        )
        drain(factory)
        refresh_stale(factory, Scorer(scored_shop.settings))
        after = client.get(f"/v1/customers/{customer}/clv?explain=true", headers=headers).json()

    def orders(score: dict[str, Any]) -> float:
        features = score["explanation"]["features"]
        return next(f["value"] for f in features if f["name"] == "orders_total")

    assert datetime.fromisoformat(after["as_of"]) >= ahead.replace(microsecond=0)
    assert orders(after) == orders(before) + 1


def test_history_pages_newest_first(
    scored_shop: ScoredShop, db: Engine, make_key: KeyFactory
) -> None:
    headers = bearer(make_key("read", "ingest"))
    customer = _top_customer(db)
    factory = make_session_factory(db)
    scorer = Scorer(scored_shop.settings)
    with TestClient(create_app(scored_shop.settings)) as client:
        for number in range(3):
            client.post(
                "/v1/events", json={"events": [_order(customer, f"o-{number}")]}, headers=headers
            )
            drain(factory)
            refresh_stale(factory, scorer)
        url = f"/v1/customers/{customer}/clv/history"
        first = client.get(url, params={"limit": 2}, headers=headers).json()
        second = client.get(
            url, params={"limit": 2, "before": first["next_before"]}, headers=headers
        ).json()
        unknown = client.get("/v1/customers/nobody/clv/history", headers=headers)

    entries = first["entries"] + second["entries"]
    assert [e["trigger"] for e in entries] == ["events", "events", "events", "model"]
    times = [e["computed_at"] for e in entries]
    assert times == sorted(times, reverse=True)
    assert second["next_before"] is None
    assert unknown.status_code == 404


def test_a_new_champion_rescores_everyone_in_the_background_while_reads_go_on(
    scored_shop: ScoredShop, db: Engine, shop_model: ClvModel, make_key: KeyFactory
) -> None:
    factory = make_session_factory(db)
    settings = scored_shop.settings
    with factory() as session, session.begin():
        second = registry.register(session, settings.model_dir, shop_model, {}, "test").version
    headers = bearer(make_key("read", "admin"))
    customer = _top_customer(db)
    with TestClient(create_app(settings)) as client:
        promoted = client.post(f"/v1/models/{second}/promote", json={}, headers=headers)
        during = client.get(f"/v1/customers/{customer}/clv", headers=headers).json()
        with factory() as session:
            queued = session.scalars(select(Job).where(Job.status == "queued")).all()
        runner = JobRunner(factory, settings)
        assert runner.run_once()
        after = client.get(f"/v1/customers/{customer}/clv", headers=headers).json()
        history = client.get(f"/v1/customers/{customer}/clv/history", headers=headers).json()

    assert promoted.status_code == 200
    assert [(job.kind, job.params) for job in queued] == [("rescore", {"version": second})]
    assert during["model_version"] == second
    assert during["source"] == "computed"
    assert after["model_version"] == second
    assert after["source"] == "stored"
    assert after["value_tier"] is not None
    versions = [(e["trigger"], e["model_version"]) for e in history["entries"]]
    assert versions == [("model", second), ("model", scored_shop.version)]


def test_erasure_takes_the_scores_and_their_history(
    scored_shop: ScoredShop, db: Engine, make_key: KeyFactory
) -> None:
    headers = bearer(make_key("read", "admin"))
    customer = _top_customer(db)
    with TestClient(create_app(scored_shop.settings)) as client:
        client.patch(
            f"/v1/customers/{customer}",
            json={"source": "crm", "attributes": {"a": 1}},
            headers=headers,
        )  # queued for a fresh score: a stale_scores row
        before = count_rows_about(db, customer)
        erased = client.delete(f"/v1/customers/{customer}", headers=headers)
        score = client.get(f"/v1/customers/{customer}/clv", headers=headers)
        history = client.get(f"/v1/customers/{customer}/clv/history", headers=headers)

    assert before["scores"] == before["score_history"] == before["stale_scores"] == 1
    assert erased.status_code == 204
    assert set(count_rows_about(db, customer).values()) == {0}
    assert score.status_code == 404
    assert history.status_code == 404
