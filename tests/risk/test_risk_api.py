"""Risk flags over HTTP: a customer's ordinary history then a spike, sent through
``POST /v1/events``, shows the flag with its reason in the profile, in the stored score and in
scores computed as of a moment (not before the spike); a steady customer gets none."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select, update

from service.config import Settings
from service.db.session import make_session_factory
from service.events.worker import drain
from service.main import create_app
from service.scoring.models import Score
from service.scoring.service import Scorer, refresh_stale
from tests.conftest import KeyFactory, ScoredShop, bearer
from tests.factories import batch, event

SPIKE = {
    "flag": "spend_spike",
    "reason": "spent 1,250.00 USD in the last 30 days, 12.5 times their usual 100.00 per 30 "
    "days over the previous 300 days",
    "window_days": 30,
    "history_days": 300,
    "recent": 1250.0,
    "usual": 100.0,
    "ratio": 12.5,
}
REFUNDS = {
    "flag": "refund_spike",
    "reason": "3 refunds against 2 orders in the last 30 days (1.50 per order), against their "
    "usual 0.00 per order (0 refunds, 10 orders in the previous 300 days)",
    "window_days": 30,
    "history_days": 300,
    "recent": 1.5,
    "usual": 0.0,
    "ratio": None,
}


@dataclass(frozen=True)
class Shop:
    client: TestClient
    headers: dict[str, str]
    now: datetime  # the events are dated from it; the flags' days count from its UTC day
    settings: Settings

    def get(self, url: str, **params: Any) -> Any:
        response = self.client.get(url, params=params, headers=self.headers)
        assert response.status_code == 200, response.text
        return response.json()

    def ago(self, days: int) -> str:
        return (self.now - timedelta(days=days)).isoformat()


def _ordinary(customer: str, now: datetime) -> list[dict[str, Any]]:
    """An order of 100.00 every 30 days from 329 to 59 days ago: 100.00 per 30 days over the
    300 days before the last 30."""
    return [_at(customer, now, days_ago) for days_ago in range(329, 58, -30)]


def _at(
    customer: str, now: datetime, days_ago: int, kind: str = "purchase", amount: str = "100.00"
) -> Any:
    moment = now - timedelta(days=days_ago)
    return event(customer_id=customer, type=kind, occurred_at=moment, amount=amount)


@pytest.fixture
def shop(
    scored_shop: ScoredShop, make_key: KeyFactory, db: Engine, apply_pending: Callable[[], int]
) -> Iterator[Shop]:
    """The scored shop plus a spender (1,250.00 two days ago), a steady customer (their usual
    100.00 two days ago) and a refunder (2 orders, then 3 refunds), applied and rescored."""
    now = datetime.now(UTC)
    events = [
        *_ordinary("spender", now),
        _at("spender", now, 2, amount="1250.00"),
        *_ordinary("steady", now),
        _at("steady", now, 2),
        *_ordinary("refunder", now),
        _at("refunder", now, 20),
        _at("refunder", now, 20),
        *(_at("refunder", now, 5, "refund") for _ in range(3)),
    ]
    headers = bearer(make_key("read", "ingest"))
    with TestClient(create_app(scored_shop.settings)) as client:
        sent = client.post("/v1/events", json=batch(*events), headers=headers).json()
        assert sent["accepted"] == len(events)
        apply_pending()
        assert refresh_stale(make_session_factory(db), Scorer(scored_shop.settings)) == 3
        yield Shop(client, headers, now, scored_shop.settings)


def test_a_spend_spike_is_flagged_with_its_reason_in_the_profile_and_the_stored_score(
    shop: Shop, db: Engine
) -> None:
    profile = shop.get("/v1/customers/spender")
    score = shop.get("/v1/customers/spender/clv")
    with make_session_factory(db)() as session:
        stored = session.scalar(select(Score.risk_flags).where(Score.customer_id == "spender"))

    assert profile["risk_flags"] == [SPIKE]
    assert score["source"] == "stored"
    assert score["risk_flags"] == [SPIKE]
    assert stored == [SPIKE]


def test_computed_scores_are_flagged_as_of_their_moment_and_not_before_the_spike(
    shop: Shop,
) -> None:
    def flags(**params: Any) -> list[dict[str, Any]]:
        score = shop.get("/v1/customers/spender/clv", **params)
        assert score["source"] == "computed"
        return list(score["risk_flags"])

    assert flags(as_of=shop.now.isoformat()) == [SPIKE]
    assert flags(horizon_days=30, explain=True) == [SPIKE]
    assert flags(as_of=shop.ago(10)) == []  # before the spike


def test_a_steady_customer_is_not_flagged_anywhere(shop: Shop) -> None:
    stored = shop.get("/v1/customers/steady/clv")
    computed = shop.get("/v1/customers/steady/clv", as_of=shop.now.isoformat())

    assert shop.get("/v1/customers/steady")["risk_flags"] == []
    assert (stored["source"], stored["risk_flags"]) == ("stored", [])
    assert (computed["source"], computed["risk_flags"]) == ("computed", [])


def test_a_refund_spike_is_flagged_in_the_profile_and_every_score(shop: Shop) -> None:
    answers = shop.client.post(
        "/v1/clv/batch",
        json={"customer_ids": ["refunder", "steady", "spender"]},
        headers=shop.headers,
    ).json()["scores"]
    computed = shop.get("/v1/customers/refunder/clv", as_of=shop.now.isoformat())
    before = shop.get("/v1/customers/refunder/clv", as_of=shop.ago(6))  # refunds: 5 days ago

    assert shop.get("/v1/customers/refunder")["risk_flags"] == [REFUNDS]
    assert [(a["customer_id"], a["source"]) for a in answers] == [
        ("refunder", "stored"),
        ("steady", "stored"),
        ("spender", "stored"),
    ]
    assert [a["risk_flags"] for a in answers] == [[REFUNDS], [], [SPIKE]]
    assert computed["risk_flags"] == [REFUNDS]
    assert before["risk_flags"] == []


def test_scores_stored_before_flags_existed_read_as_unflagged(shop: Shop, db: Engine) -> None:
    with make_session_factory(db)() as session, session.begin():
        session.execute(update(Score).where(Score.customer_id == "spender").values(risk_flags=None))

    score = shop.get("/v1/customers/spender/clv")

    assert (score["source"], score["risk_flags"]) == ("stored", [])
    assert shop.get("/v1/customers/spender")["risk_flags"] == [SPIKE]  # computed now


def test_rescoring_rewrites_the_stored_flags(shop: Shop, db: Engine) -> None:
    order = _at("steady", shop.now, 0, amount="900.00")
    assert (
        shop.client.post("/v1/events", json=batch(order), headers=shop.headers).status_code == 200
    )
    factory = make_session_factory(db)
    drain(factory)
    assert refresh_stale(factory, Scorer(shop.settings)) == 1

    score = shop.get("/v1/customers/steady/clv")

    assert score["source"] == "stored"
    assert [(f["flag"], f["recent"]) for f in score["risk_flags"]] == [("spend_spike", 1000.0)]
