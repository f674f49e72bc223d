"""The audiences API: refusals (422 with the reason, 404, 409), paging, the CSV export, and
membership that follows the stored scores."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from service.db.session import make_session_factory
from service.scoring.service import Scorer, refresh_stale
from tests.conftest import KeyFactory, ScoredShop, bearer
from tests.factories import batch, event


@pytest.mark.parametrize(
    ("filters", "says"),
    [
        ({"value_tier": {"min": 11}}, "less than or equal to 10"),
        ({"value_tier": {"min": 0}}, "greater than or equal to 1"),
        ({"value_tier": {"min": 8, "max": 3}}, "min 8 is above max 3"),
        ({"clv": {"min": 500, "max": 100}}, "min 500.0 is above max 100.0"),
        ({"clv": {}}, "give min, max or both"),
        ({"purchase_probability": {"max": 1.5}}, "less than or equal to 1"),
        ({"next_order_date": {"start": "2027-01-31", "end": "2027-01-01"}}, "is after end"),
        ({"churn_risk": ["extreme"]}, "'low', 'medium' or 'high'"),
        ({"churn_risk": []}, "at least 1 item"),
        ({"segment": ["whales"]}, "champions"),
        ({"risk_flags": ["fraud"]}, "spend_spike"),
        ({"profile": {"region": {"nested": 1}}}, "profile.region"),
        ({"profile": {"region": []}}, "give at least one value"),
        ({"tier": {"min": 1}}, "Extra inputs are not permitted"),
    ],
)
def test_bad_filters_are_422_with_the_reason(
    client: TestClient, make_key: KeyFactory, filters: dict[str, Any], says: str
) -> None:
    admin = bearer(make_key("admin"))

    saved = client.post("/v1/audiences", json={"name": "bad", "filters": filters}, headers=admin)
    previewed = client.post("/v1/audiences/preview", json=filters, headers=admin)

    for answer in (saved, previewed):
        assert answer.status_code == 422, answer.text
        assert answer.json()["code"] == "validation_error"
        assert says in answer.text
    assert client.get("/v1/audiences", headers=admin).json() == {"audiences": []}


def test_an_unknown_audience_is_404_and_a_taken_name_409(
    client: TestClient, make_key: KeyFactory
) -> None:
    admin = bearer(make_key("admin"))
    for method, path in [
        ("GET", "/v1/audiences/99"),
        ("DELETE", "/v1/audiences/99"),
        ("GET", "/v1/audiences/99/members"),
        ("GET", "/v1/audiences/99/export.csv"),
    ]:
        answer = client.request(method, path, headers=admin)
        assert answer.status_code == 404, (path, answer.text)
        assert answer.json()["code"] == "not_found"

    first = client.post("/v1/audiences", json={"name": "vip"}, headers=admin)
    again = client.post("/v1/audiences", json={"name": "vip"}, headers=admin)

    assert first.status_code == 201
    assert (again.status_code, again.json()["code"]) == (409, "conflict")
    assert client.delete(f"/v1/audiences/{first.json()['id']}", headers=admin).status_code == 204
    assert client.get(f"/v1/audiences/{first.json()['id']}", headers=admin).status_code == 404


def test_without_a_champion_an_audience_is_empty(client: TestClient, make_key: KeyFactory) -> None:
    admin = bearer(make_key("admin"))
    created = client.post("/v1/audiences", json={"name": "all", "notify_above": 10}, headers=admin)

    assert created.status_code == 201, created.text
    assert created.json()["count"]["customers"] == 0
    assert created.json()["count"]["model_version"] is None
    assert created.json()["last_count"] is None  # the first check sets the baseline
    members = client.get(f"/v1/audiences/{created.json()['id']}/members", headers=admin)
    assert members.json()["members"] == []


def pages(client: TestClient, path: str, headers: dict[str, str], limit: int) -> list[Any]:
    found, after = [], None
    while True:
        params: dict[str, Any] = {"limit": limit} | ({"after": after} if after else {})
        page = client.get(path, params=params, headers=headers).json()
        found.append([m["customer_id"] for m in page["members"]])
        after = page["next_after"]
        if after is None:
            return found


def test_paging_and_the_export_cover_every_member_once(
    scored_shop: ScoredShop, client: TestClient, make_key: KeyFactory
) -> None:
    admin = bearer(make_key("admin"))
    created = client.post(
        "/v1/audiences", json={"name": "top", "filters": {"value_tier": {"min": 7}}}, headers=admin
    ).json()
    path = f"/v1/audiences/{created['id']}"
    total = created["count"]["customers"]

    paged = pages(client, f"{path}/members", admin, limit=7)
    one_page = client.get(f"{path}/members", params={"limit": 1000}, headers=admin).json()
    exported = client.get(f"{path}/export.csv", headers=admin)
    rows = list(csv.DictReader(io.StringIO(exported.text)))

    flat = [customer for page in paged for customer in page]
    assert total == 240  # tiers 7-10 of 600 customers
    assert len(paged) == -(-total // 7)
    assert all(len(page) == 7 for page in paged[:-1])
    assert flat == sorted(set(flat))
    assert len(flat) == total
    assert exported.status_code == 200
    assert exported.headers["content-type"].startswith("text/csv")
    assert [row["customer_id"] for row in rows] == flat
    members = one_page["members"]
    for row, member in zip(rows, members, strict=True):
        assert float(row["clv"]) == member["clv"]
        assert int(row["value_tier"]) == member["value_tier"]
        assert row["churn_risk"] == member["churn_risk"]
        assert row["expected_next_order_date"] == (member["expected_next_order_date"] or "")
        assert row["risk_flags"] == ";".join(member["risk_flags"])


def test_membership_follows_the_stored_scores(
    scored_shop: ScoredShop,
    client: TestClient,
    make_key: KeyFactory,
    db: Engine,
    apply_pending: Callable[[], int],
) -> None:
    """A saved audience holds filters, not customers: a new customer's first order, once the
    worker has scored it, brings them in; erasing them takes them out."""
    admin = bearer(make_key("admin"))
    created = client.post(
        "/v1/audiences", json={"name": "new buyers", "filters": {"segment": ["new"]}}, headers=admin
    ).json()
    path = f"/v1/audiences/{created['id']}"
    before = created["count"]["customers"]
    order = event(customer_id="brand-new", occurred_at=datetime.now(UTC), amount="80.00")

    assert client.post("/v1/events", json=batch(order), headers=admin).status_code == 200
    apply_pending()
    assert refresh_stale(make_session_factory(db), Scorer(scored_shop.settings)) == 1
    after = client.get(path, headers=admin).json()["count"]
    members = client.get(f"{path}/members", headers=admin).json()["members"]
    client.delete("/v1/customers/brand-new", headers=admin)
    erased = client.get(path, headers=admin).json()["count"]

    assert (before, after["customers"], erased["customers"]) == (0, 1, 0)
    assert after["revenue"] > 0
    assert [m["customer_id"] for m in members] == ["brand-new"]
    assert members[0]["segment"] == "new"
    assert members[0]["cold_start"] is False
