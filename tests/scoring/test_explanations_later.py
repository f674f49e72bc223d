"""Scores first, attributions right after: a rescored customer's score is stored without
attributions and queued for them; a worker turn stores its stale customers' scores, then their
attributions, then explains a bounded batch of older ones (a new champion's rescoring leaves
every score to that queue); an explained read meanwhile gets the stored score with attributions
computed for it; attributions computed for a score replaced meanwhile are never stored on the
newer one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from service.db.session import make_session_factory
from service.events.worker import Worker
from service.main import create_app
from service.scoring import repository as scores
from service.scoring.service import EXPLAIN_BATCH, Scorer, explain_pending, refresh_stale
from tests.conftest import KeyFactory, ScoredShop, bearer, top_customer
from tests.prometheus import sample


def _total(explanation: dict[str, Any]) -> float:
    return float(
        explanation["base_value"] + sum(f["contribution"] for f in explanation["features"])
    )


def test_a_rescored_score_is_served_at_once_and_its_attributions_follow(
    explained_shop: ScoredShop, db: Engine, make_key: KeyFactory
) -> None:
    headers = bearer(make_key("read"))
    customer = top_customer(db)
    factory = make_session_factory(db)
    scorer = Scorer(explained_shop.settings)
    with factory() as session, session.begin():
        scores.mark_stale(session, [customer], "attributes")
    assert refresh_stale(factory, scorer, explain=False) == 1  # as a new champion's rescoring
    with TestClient(create_app(explained_shop.settings)) as client:
        waiting = sample(client.get("/metrics").text, "clv_unexplained_scores")
        ready = client.get("/readyz").json()
        plain = client.get(f"/v1/customers/{customer}/clv", headers=headers).json()
        before = client.get(f"/v1/customers/{customer}/clv?explain=true", headers=headers).json()
        with factory() as session:
            assert scores.current(session, customer).explanation is None  # type: ignore[union-attr]
        assert explain_pending(factory, scorer) == 1
        after = client.get(f"/v1/customers/{customer}/clv?explain=true", headers=headers).json()
        drained = sample(client.get("/metrics").text, "clv_unexplained_scores")

    assert waiting == 1
    assert ready["unexplained_scores"] == 1
    # the explained read answered the stored score, with attributions computed for it
    assert before["source"] == "stored"
    assert (before["as_of"], before["clv"]) == (plain["as_of"], plain["clv"])
    assert abs(_total(before["explanation"]) - plain["clv"]) <= 0.02 * max(plain["clv"], 1.0)
    # the worker's attributions are those of the same score
    assert after["source"] == "stored"
    assert after["explanation"] == before["explanation"]
    assert drained == 0


def test_attributions_of_a_replaced_score_are_not_stored_on_the_newer_one(
    explained_shop: ScoredShop, db: Engine
) -> None:
    customer = top_customer(db)
    factory = make_session_factory(db)
    scorer = Scorer(explained_shop.settings)
    with factory() as session, session.begin():
        scores.mark_stale(session, [customer], "attributes")
    refresh_stale(factory, scorer, explain=False)
    now = datetime.now(UTC)
    with factory() as session, session.begin():
        leased = scores.lease_unexplained(session, 10, now, timedelta(minutes=5))
        scores.mark_stale(session, [customer], "events")
    refresh_stale(factory, scorer, explain=False)  # a newer score, waiting for attributions
    with factory() as session, session.begin():
        scores.save_explanations(session, leased, {customer: b"attributions of the older score"})
    with factory() as session:
        current = scores.current(session, customer)
        waiting = scores.unexplained(session)

    assert list(leased) == [customer]
    assert current is not None
    assert current.computed_at > leased[customer]
    assert current.explanation is None
    assert waiting == 1  # the newer score, with a lease of its own to come


def test_a_worker_turn_stores_fresh_scores_with_their_attributions_then_explains_older_ones(
    explained_shop: ScoredShop, db: Engine
) -> None:
    factory = make_session_factory(db)
    scorer = Scorer(explained_shop.settings)
    waiting = EXPLAIN_BATCH + 50
    with factory() as session, session.begin():
        customers = sorted(scores.moments(session, [f"C{n:07d}" for n in range(1, 1_000)]))
        scores.mark_stale(session, customers[:waiting], "model")
    refresh_stale(factory, scorer, limit=waiting, explain=False)  # a new champion's rescoring
    fresh = customers[waiting]
    with factory() as session, session.begin():
        scores.mark_stale(session, [fresh], "attributes")
    worker = Worker(factory, poll_seconds=0.01, batch=100, scorer=scorer)

    worker.turn()
    with factory() as session:
        after_first = (scores.queued(session), scores.unexplained(session))
        rescored = scores.current(session, fresh)
    worker.turn()
    with factory() as session:
        after_second = (scores.queued(session), scores.unexplained(session))

    # the stale customer rescored and explained at once; the older scores a batch a turn
    assert rescored is not None
    assert rescored.trigger == "attributes"
    assert rescored.explanation is not None
    assert after_first == (0, waiting - EXPLAIN_BATCH)
    assert after_second == (0, 0)
