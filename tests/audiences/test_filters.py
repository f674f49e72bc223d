"""Audience filters on SQLite and PostgreSQL: each filter's count, revenue and members equal a
count in Python over the same stored scores, computed the way a score is served
(``service.scoring.service``: tier, churn band, next order date; ``service.scoring.value``:
margin and discount; ``service.customers.service.all_profiles``: the merged profile)."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, get_args

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select, update

from service.audiences.schemas import Segment
from service.config import Settings
from service.customers.schemas import CustomerAttributesUpdate
from service.customers.service import ProfilePolicy, all_profiles, replace_many
from service.db.session import make_session_factory
from service.main import create_app
from service.ml.segments import SEGMENTS
from service.privacy import PiiHasher
from service.scoring import repository as scores
from service.scoring.models import Score
from service.scoring.service import churn_risk, next_order_date
from service.scoring.value import ValueTerms
from tests.conftest import KeyFactory, ScoredShop, bearer

TERMS = {"margin": 0.4, "annual_discount_rate": 0.1}
"""Served values differ from stored ones, so the clv filter's conversion is exercised."""


@dataclass(frozen=True)
class Row:
    """One stored score as served, with the customer's merged profile."""

    customer_id: str
    clv: float  # served
    tier: int
    churn: str
    probability: float
    next_order: date | None
    segment: str | None
    cold_start: bool
    flags: frozenset[str]
    profile: dict[str, Any]


@dataclass(frozen=True)
class Shop:
    client: TestClient
    headers: dict[str, str]
    rows: list[Row]

    def quantile(self, values: list[float], q: float) -> float:
        return float(np.quantile(values, q))


def vary_scores(db: Engine) -> None:
    """The simulated shop's customers are all long quiet (every one a high churn risk, nobody
    due to order): spread their purchase probabilities over [0, 1] (with the edges 0.5 and 1)
    and their as_of over three days, so every band and next-order window holds someone; and
    flag every 7th (spend) and 11th (refunds) customer."""
    rng = np.random.default_rng(18)
    now = datetime.now(UTC)
    with make_session_factory(db)() as session, session.begin():
        ids = sorted(session.scalars(select(Score.customer_id)))
        changes = []
        for i, customer in enumerate(ids):
            flags = [{"flag": "spend_spike"}] if i % 7 == 0 else []
            flags += [{"flag": "refund_spike"}] if i % 11 == 0 else []
            probability = 1.0 if i % 97 == 0 else 0.5 if i % 89 == 0 else float(rng.uniform())
            as_of = now - timedelta(hours=float(rng.uniform(0, 72)))
            changes.append(
                {
                    "customer_id": customer,
                    "purchase_probability": probability,
                    "as_of": as_of,
                    "risk_flags": flags,
                }
            )
        session.execute(update(Score), changes)


def override_profiles(db: Engine, settings: Settings) -> None:
    """A more trusted source (crm) overrides some customers' region, and a source outside the
    precedence list (loyalty) gives one to others: the merged profile decides."""
    policy = ProfilePolicy.from_settings(settings, PiiHasher.from_settings(settings))
    with make_session_factory(db)() as session, session.begin():
        ids = sorted(session.scalars(select(Score.customer_id)))
        updates = [
            (c, CustomerAttributesUpdate(source="crm", attributes={"region": "crm-region"}))
            for c in ids[::5]
        ]
        updates += [
            (
                c,
                CustomerAttributesUpdate(
                    source="loyalty", attributes={"region": "north", "vip": True}
                ),
            )
            for c in ids[1::6]
        ]
        replace_many(session, updates, policy)


def served_rows(db: Engine, settings: Settings, version: str) -> list[Row]:
    policy = ProfilePolicy.from_settings(settings, PiiHasher.from_settings(settings))
    with make_session_factory(db)() as session:
        stored = session.scalars(select(Score).where(Score.model_version == version)).all()
        horizon = stored[0].horizon_days
        deciles = scores.deciles(session, version, horizon)
        assert deciles is not None
        profiles, _ = all_profiles(session, policy)
    factor = ValueTerms.of(settings).predicted(horizon)
    return [
        Row(
            customer_id=s.customer_id,
            clv=s.clv * factor,
            tier=1 + bisect_right(deciles.boundaries, s.clv),
            churn=churn_risk(1.0 - s.purchase_probability),
            probability=s.purchase_probability,
            next_order=next_order_date(s.as_of, horizon, s.purchase_probability),
            segment=s.segment,
            cold_start=s.cold_start,
            flags=frozenset(f["flag"] for f in s.risk_flags or ()),
            profile=profiles.get(s.customer_id, {}),
        )
        for s in stored
    ]


@pytest.fixture
def shop(scored_shop: ScoredShop, db: Engine, make_key: KeyFactory) -> Iterator[Shop]:
    settings = scored_shop.settings.model_copy(update=TERMS)
    vary_scores(db)
    override_profiles(db, settings)
    rows = served_rows(db, settings, scored_shop.version)
    with TestClient(create_app(settings)) as client:
        yield Shop(client, bearer(make_key("read")), rows)


def dates(shop: Shop) -> list[date]:
    return sorted(r.next_order for r in shop.rows if r.next_order is not None)


# (filters built from the shop's data, the same question asked of each served row)
Case = tuple[Callable[[Shop], dict[str, Any]], Callable[[Shop, Row], bool]]
CASES: dict[str, Case] = {
    "everyone": (lambda s: {}, lambda s, r: True),
    "top two tiers": (lambda s: {"value_tier": {"min": 9}}, lambda s, r: r.tier >= 9),
    "tiers 3 to 5": (
        lambda s: {"value_tier": {"min": 3, "max": 5}},
        lambda s, r: 3 <= r.tier <= 5,
    ),
    "bottom tier": (lambda s: {"value_tier": {"max": 1}}, lambda s, r: r.tier == 1),
    "served clv range": (
        lambda s: {
            "clv": {
                "min": s.quantile([r.clv for r in s.rows], 0.3),
                "max": s.quantile([r.clv for r in s.rows], 0.7),
            }
        },
        lambda s, r: (
            s.quantile([x.clv for x in s.rows], 0.3)
            <= r.clv
            <= s.quantile([x.clv for x in s.rows], 0.7)
        ),
    ),
    "low churn": (lambda s: {"churn_risk": ["low"]}, lambda s, r: r.churn == "low"),
    "high churn": (lambda s: {"churn_risk": ["high"]}, lambda s, r: r.churn == "high"),
    "medium or high churn": (
        lambda s: {"churn_risk": ["medium", "high"]},
        lambda s, r: r.churn in ("medium", "high"),
    ),
    "purchase probability": (
        lambda s: {"purchase_probability": {"min": 0.2, "max": 0.6}},
        lambda s, r: 0.2 <= r.probability <= 0.6,
    ),
    "next order window": (
        lambda s: {
            "next_order_date": {
                "start": dates(s)[len(dates(s)) // 4].isoformat(),
                "end": dates(s)[len(dates(s)) * 3 // 4].isoformat(),
            }
        },
        lambda s, r: (
            r.next_order is not None
            and dates(s)[len(dates(s)) // 4] <= r.next_order <= dates(s)[len(dates(s)) * 3 // 4]
        ),
    ),
    "next order by": (
        lambda s: {"next_order_date": {"end": dates(s)[len(dates(s)) // 2].isoformat()}},
        lambda s, r: r.next_order is not None and r.next_order <= dates(s)[len(dates(s)) // 2],
    ),
    "segments": (
        lambda s: {"segment": ["lost", "hibernating", "at_risk"]},
        lambda s, r: r.segment in ("lost", "hibernating", "at_risk"),
    ),
    "spend spike": (
        lambda s: {"risk_flags": ["spend_spike"]},
        lambda s, r: "spend_spike" in r.flags,
    ),
    "either flag": (
        lambda s: {"risk_flags": ["spend_spike", "refund_spike"]},
        lambda s, r: bool(r.flags),
    ),
    "merged region": (
        lambda s: {"profile": {"region": "north"}},
        lambda s, r: r.profile.get("region") == "north",
    ),
    "regions and a flag attribute": (
        lambda s: {"profile": {"region": ["crm-region", "north"], "vip": True}},
        lambda s, r: (
            r.profile.get("region") in ("crm-region", "north") and r.profile.get("vip") is True
        ),
    ),
    "cold start": (lambda s: {"cold_start": True}, lambda s, r: r.cold_start),
    "buyers": (lambda s: {"cold_start": False}, lambda s, r: not r.cold_start),
    "buyers at risk of churning in the top tiers": (
        lambda s: {
            "value_tier": {"min": 6},
            "churn_risk": ["medium", "high"],
            "cold_start": False,
            "profile": {"region": "north"},
        },
        lambda s, r: (
            r.tier >= 6
            and r.churn in ("medium", "high")
            and not r.cold_start
            and r.profile.get("region") == "north"
        ),
    ),
}


def all_members(shop: Shop, audience_id: int, limit: int) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    after: str | None = None
    while True:
        params: dict[str, Any] = {"limit": limit} | ({"after": after} if after else {})
        page = shop.client.get(
            f"/v1/audiences/{audience_id}/members", params=params, headers=shop.headers
        )
        assert page.status_code == 200, page.text
        found += page.json()["members"]
        after = page.json()["next_after"]
        if after is None:
            return found


def test_each_filter_holds_the_customers_counted_by_hand(shop: Shop, make_key: KeyFactory) -> None:
    """One shop for every case (a clone and an app per case cost seconds each)."""
    admin, wrong = bearer(make_key("admin")), {}
    for name, (build, holds) in CASES.items():
        filters = build(shop)
        expected = sorted(r.customer_id for r in shop.rows if holds(shop, r))
        revenue = sum(r.clv for r in shop.rows if holds(shop, r))
        created = shop.client.post(
            "/v1/audiences", json={"name": name, "filters": filters}, headers=admin
        )
        assert created.status_code == 201, created.text
        audience_id = created.json()["id"]

        got = shop.client.get(f"/v1/audiences/{audience_id}", headers=shop.headers)
        counted = got.json()["count"]
        members = [m["customer_id"] for m in all_members(shop, audience_id, limit=1000)]
        preview = shop.client.post("/v1/audiences/preview", json=filters, headers=shop.headers)

        assert 0 < len(expected) < len(shop.rows) or name == "everyone", name  # a real question
        found = (counted["customers"], members, preview.json()["customers"])
        if found != (len(expected), expected, len(expected)):
            wrong[name] = (
                counted["customers"],
                len(expected),
                sorted(set(members) ^ set(expected)),
            )
        assert counted["revenue"] == pytest.approx(revenue, rel=1e-9, abs=1e-3), name
        assert counted["tiers_known"] is True

    assert wrong == {}  # name: (counted, expected, the customers in one and not the other)


def test_members_are_served_as_their_scores(shop: Shop, make_key: KeyFactory) -> None:
    created = shop.client.post(
        "/v1/audiences", json={"name": "all"}, headers=bearer(make_key("admin"))
    ).json()
    by_id = {r.customer_id: r for r in shop.rows}

    for member in all_members(shop, created["id"], limit=250):
        row = by_id[member["customer_id"]]
        assert member["clv"] == pytest.approx(row.clv, abs=1e-4)
        assert member["value_tier"] == row.tier
        assert member["churn_risk"] == row.churn
        assert member["expected_next_order_date"] == (
            row.next_order.isoformat() if row.next_order else None
        )
        assert set(member["risk_flags"]) == row.flags
        assert member["segment"] == row.segment


def test_the_stored_segment_is_the_profile_segment(shop: Shop, make_key: KeyFactory) -> None:
    """The segment stored with a score is the one ``GET /v1/customers/{id}`` computes."""
    buyers = [r for r in shop.rows if not r.cold_start][:25]
    headers = bearer(make_key("read"))

    for row in buyers:
        customer = shop.client.get(f"/v1/customers/{row.customer_id}", headers=headers).json()
        assert customer["segment"] == row.segment


def test_the_segment_names_are_the_rfm_scheme() -> None:
    assert get_args(Segment) == SEGMENTS
