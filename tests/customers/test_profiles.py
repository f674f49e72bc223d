"""/v1/customers/{customer_id}: multi-source attributes, merged profile, activity, erasure."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, delete, func, select
from sqlalchemy.orm import Session

from service.config import Settings
from service.customers import repository as customer_rows
from service.customers import service as customers
from service.customers.models import CustomerProfile
from service.customers.schemas import CustomerAttributesUpdate
from service.customers.service import ProfilePolicy
from service.db.base import Base
from service.db.session import make_engine, make_session_factory
from service.events.worker import Worker
from service.privacy import PiiHasher
from tests.conftest import KeyFactory, bearer
from tests.factories import BASE_TIME, batch, event, purchases


@pytest.fixture
def headers(make_key: KeyFactory) -> dict[str, str]:
    return bearer(make_key("admin"))


def send_attributes(
    client: TestClient,
    headers: dict[str, str],
    source: str,
    attributes: dict[str, Any],
    *,
    method: str = "PATCH",
    customer_id: str = "c-1",
) -> dict[str, Any]:
    response = client.request(
        method,
        f"/v1/customers/{customer_id}",
        json={"source": source, "attributes": attributes},
        headers=headers,
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_sources_are_kept_apart_and_merged_by_precedence(
    client: TestClient, headers: dict[str, str]
) -> None:
    send_attributes(client, headers, "social", {"region": "west", "followers": 120})
    send_attributes(client, headers, "platform", {"region": "south", "age_band": "25-34"})
    send_attributes(client, headers, "crm", {"region": "north"})
    send_attributes(client, headers, "loyalty_app", {"age_band": "35-44", "tier": "gold"})
    profile = send_attributes(client, headers, "survey", {"tier": "silver"})

    merged = {name: (a["value"], a["source"]) for name, a in profile["profile"].items()}
    assert merged == {
        "region": ("north", "crm"),  # crm outranks platform and social
        "age_band": ("25-34", "platform"),  # a ranked source outranks unranked ones
        "followers": (120, "social"),
        "tier": ("silver", "survey"),  # among unranked sources the newest wins
    }
    assert [s["source"] for s in profile["sources"]] == [
        "crm",
        "platform",
        "social",
        "survey",
        "loyalty_app",
    ]
    social = next(s for s in profile["sources"] if s["source"] == "social")
    assert social["attributes"] == {"region": "west", "followers": 120}


def stored_profile(db: Engine, customer_id: str = "c-1") -> dict[str, Any] | None:
    """The merged profile audiences filter on (``customer_profiles``)."""
    with Session(db) as session:
        row = session.get(CustomerProfile, customer_id)
        return None if row is None else row.attributes


def test_the_stored_merged_profile_is_the_one_served_after_every_write(
    client: TestClient, headers: dict[str, str], db: Engine
) -> None:
    writes = [
        ("PATCH", "platform", {"region": "south", "age_band": "25-34"}),
        ("PATCH", "crm", {"region": "north", "vip": True}),
        ("PATCH", "crm", {"region": None}),  # platform's region shows again
        ("PUT", "platform", {"age_band": "35-44"}),  # the platform region is gone
        ("PATCH", "survey", {"region": "east"}),
    ]
    for method, source, attributes in writes:
        served = send_attributes(client, headers, source, attributes, method=method)
        assert stored_profile(db) == {name: a["value"] for name, a in served["profile"].items()}
    assert stored_profile(db) == {"age_band": "35-44", "vip": True, "region": "east"}


def test_a_worker_merges_profiles_missing_or_merged_under_another_precedence(
    client: TestClient, headers: dict[str, str], db: Engine, settings: Settings
) -> None:
    for customer in ("c-1", "c-2"):
        send_attributes(client, headers, "crm", {"region": "north"}, customer_id=customer)
        send_attributes(client, headers, "platform", {"region": "south"}, customer_id=customer)
    with db.begin() as connection:  # as after the migration that added the table
        connection.execute(delete(CustomerProfile).where(CustomerProfile.customer_id == "c-2"))
    assert stored_profile(db, "c-1") == {"region": "north"}

    platform_first = settings.model_copy(update={"source_precedence": ["platform", "crm"]})
    policy = ProfilePolicy.from_settings(platform_first, PiiHasher.from_settings(settings))
    worker = Worker(make_session_factory(db), poll_seconds=1.0, batch=10, profiles=policy)
    worker.turn()

    assert stored_profile(db, "c-1") == stored_profile(db, "c-2") == {"region": "south"}
    assert customers.merge_unmerged(make_session_factory(db), policy) == 0  # nothing left

    with Session(db) as session, session.begin():  # a customer erased while a merge ran
        customer_rows.lock_profiles(session, ["gone"])
        customers.merge_profiles(session, ["gone"], policy)
    assert stored_profile(db, "gone") is None


def test_concurrent_writes_to_two_sources_of_one_customer_both_reach_the_merged_profile(
    postgres_settings: Settings,
) -> None:
    """Each write merges the customer's sources as it sees them; without the lock on the merged
    row, two writes committing together each miss the other's source (PostgreSQL; SQLite
    serialises writers)."""
    engine = make_engine(postgres_settings)
    policy = ProfilePolicy.from_settings(
        postgres_settings, PiiHasher.from_settings(postgres_settings)
    )
    rounds = 25
    barrier = threading.Barrier(2)

    def write(source: str) -> None:
        for number in range(rounds):
            barrier.wait()
            with Session(engine) as session, session.begin():
                update = CustomerAttributesUpdate(source=source, attributes={source: number})
                customers.update_attributes(session, "c-1", update, policy, replace=False)

    try:
        threads = [threading.Thread(target=write, args=(s,)) for s in ("crm", "platform")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert stored_profile(engine) == {"crm": rounds - 1, "platform": rounds - 1}
    finally:
        engine.dispose()


def test_patch_merges_and_null_removes_while_put_replaces(
    client: TestClient, headers: dict[str, str]
) -> None:
    send_attributes(client, headers, "crm", {"region": "north", "segment": "b2c", "vip": True})
    patched = send_attributes(client, headers, "crm", {"segment": None, "age_band": "18-24"})
    assert patched["sources"][0]["attributes"] == {
        "region": "north",
        "vip": True,
        "age_band": "18-24",
    }

    replaced = send_attributes(client, headers, "crm", {"region": "east"}, method="PUT")
    assert replaced["sources"][0]["attributes"] == {"region": "east"}


def test_email_and_phone_are_stored_only_as_keyed_hashes(
    client: TestClient, headers: dict[str, str], db: Engine
) -> None:
    crm = send_attributes(
        client, headers, "crm", {"email": "Ann@Example.com ", "phone": "+1 555-0100"}
    )
    platform = send_attributes(client, headers, "platform", {"email": "ann@example.com"})

    crm_email = crm["profile"]["email"]["value"]
    assert crm_email.startswith("hmac-sha256:")
    assert (
        next(s for s in platform["sources"] if s["source"] == "platform")["attributes"]["email"]
        == crm_email
    )  # normalised before hashing: the same person matches across sources
    assert crm["profile"]["phone"]["value"].startswith("hmac-sha256:")
    everything = client.get("/v1/customers/c-1", headers=headers).text.lower()
    assert "ann@example.com" not in everything
    # the number as sent or normalised ("555" alone also appears in timestamps' microseconds)
    assert not any(raw in everything for raw in ("555-0100", "5550100"))
    stored = dump(db, "SELECT * FROM customer_attributes") + dump(
        db, "SELECT * FROM customer_profiles"
    )
    assert "example.com" not in stored.lower()
    assert not any(raw in stored for raw in ("555-0100", "5550100"))


def test_email_in_event_properties_is_hashed_too(
    client: TestClient, headers: dict[str, str], db: Engine
) -> None:
    client.post(
        "/v1/events",
        json=batch(event(properties={"email": "bob@example.com", "coupon": "X"})),
        headers=headers,
    )
    stored = dump(db, "SELECT properties FROM events")
    assert "bob@example.com" not in stored
    assert "hmac-sha256:" in stored


def test_activity_summary_adds_up_the_events(
    client: TestClient, headers: dict[str, str], apply_pending: Callable[[], int]
) -> None:
    body = batch(
        # Days 0, 10 (two orders that day), 30: 3 purchase days, 2 of them repeats.
        *purchases("c-1", (0, "20.00"), (10, "5.50"), (10, "4.50"), (30, "40.00")),
        event(customer_id="c-1", type="refund", amount="5.50"),
        event(customer_id="c-1", type="view", amount=None),
        *purchases("someone-else", (3, "999.00")),
    )
    client.post("/v1/events", json=body, headers=headers)
    apply_pending()

    activity = client.get("/v1/customers/c-1", headers=headers).json()["activity"]

    assert activity["events"] == 6
    assert activity["orders"] == 4
    assert Decimal(activity["revenue"]) == Decimal("70.00")
    assert activity["refunds"] == 1
    assert Decimal(activity["refunded_amount"]) == Decimal("5.50")
    assert Decimal(activity["net_revenue"]) == Decimal("64.50")
    assert activity["first_order_at"] == "2026-01-15T12:00:00Z"
    assert activity["last_order_at"] == "2026-02-14T12:00:00Z"
    assert activity["frequency"] == 2
    assert activity["recency_days"] == 30
    assert Decimal(activity["monetary_value"]) == Decimal("25")  # (10.00 + 40.00) / 2
    today = datetime.now(UTC).date()
    assert activity["age_days"] in {
        (today - BASE_TIME.date()).days,
        (today - BASE_TIME.date()).days - 1,
    }
    assert activity["currency"] == "USD"


def test_a_customer_known_only_from_events_can_be_read(
    client: TestClient, headers: dict[str, str]
) -> None:
    client.post("/v1/events", json=batch(event(customer_id="only-events")), headers=headers)

    body = client.get("/v1/customers/only-events", headers=headers).json()

    assert body["profile"] == {}
    assert body["sources"] == []
    assert body["activity"]["orders"] == 1


def test_unknown_customer_is_404_and_bad_ids_are_422(
    client: TestClient, headers: dict[str, str]
) -> None:
    missing = client.get("/v1/customers/nobody", headers=headers)
    too_long = client.get("/v1/customers/" + "x" * 129, headers=headers)
    bad_source = client.patch(
        "/v1/customers/c-1", json={"source": "CRM!", "attributes": {}}, headers=headers
    )
    nested = client.patch(
        "/v1/customers/c-1", json={"source": "crm", "attributes": {"a": {"b": 1}}}, headers=headers
    )

    assert (missing.status_code, missing.json()["code"]) == (404, "not_found")
    assert too_long.status_code == 422
    assert bad_source.status_code == 422
    assert nested.status_code == 422


def count_rows_about(db: Engine, customer_id: str) -> dict[str, int | None]:
    with db.connect() as connection:
        return {
            table.name: connection.scalar(
                select(func.count()).select_from(table).where(table.c.customer_id == customer_id)
            )
            for table in Base.metadata.sorted_tables
            if "customer_id" in table.c
        }


def dump(db: Engine, sql: str) -> str:
    """Everything a query returns, as text, to search for values that must not be stored."""
    with db.connect() as connection:
        return str(connection.exec_driver_sql(sql).all())


def test_erasure_deletes_every_row_about_the_customer_and_nothing_else(
    client: TestClient, headers: dict[str, str], db: Engine, apply_pending: Callable[[], int]
) -> None:
    client.post(
        "/v1/events",
        json=batch(
            *purchases("c-1", (0, "1"), (5, "2")),
            event(customer_id="c-1", type="view", amount=None, items=[{"sku": "S1"}]),
            *purchases("c-2", (1, "3")),
        ),
        headers=headers,
    )
    send_attributes(client, headers, "crm", {"email": "c1@example.com"})
    send_attributes(client, headers, "crm", {"region": "x"}, customer_id="c-2")
    apply_pending()
    stored = count_rows_about(db, "c-1")
    scores = {"scores", "score_history", "stale_scores", "unexplained_scores"}  # tests/scoring
    assert all(count for table, count in stored.items() if table not in scores)

    erased = client.delete("/v1/customers/c-1", headers=headers)

    assert erased.status_code == 204
    assert erased.content == b""
    assert set(count_rows_about(db, "c-1").values()) == {0}
    # Nor anywhere else: no table, whatever its columns (JSON text included), holds the id.
    mentions = re.compile(r"(?<![\w-])c-1(?![\w-])")
    for table in Base.metadata.sorted_tables:
        assert not mentions.search(dump(db, f"SELECT * FROM {table.name}")), table.name
    assert re.search(r"(?<![\w-])c-2(?![\w-])", dump(db, "SELECT * FROM events"))
    assert client.get("/v1/customers/c-1", headers=headers).status_code == 404
    assert client.delete("/v1/customers/c-1", headers=headers).status_code == 404
    assert client.get("/v1/customers/c-2", headers=headers).json()["activity"]["orders"] == 1


def test_segment_before_and_after_the_worker_applies_the_events(
    client: TestClient, headers: dict[str, str], apply_pending: Callable[[], int]
) -> None:
    send_attributes(client, headers, "crm", {"region": "x"}, customer_id="browser")
    client.post("/v1/events", json=batch(*purchases("buyer", (0, "5"))), headers=headers)

    prospect = client.get("/v1/customers/browser", headers=headers).json()
    pending = client.get("/v1/customers/buyer", headers=headers).json()
    apply_pending()
    applied = client.get("/v1/customers/buyer", headers=headers).json()

    assert (prospect["segment"], prospect["features"]) == ("prospect", {})
    assert (pending["segment"], pending["features"]) == (None, {})
    assert applied["segment"] == "lost"  # one order, long ago (BASE_TIME is in January 2026)
    assert applied["features"]["orders_total"] == 1
