"""POST /v1/events through real HTTP on both databases."""

from __future__ import annotations

import json
import socket
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from service.config import Settings
from service.events.models import Event
from service.main import create_app
from tests.conftest import KeyFactory, bearer, serve_app
from tests.factories import BASE_TIME, batch, event, iso


@pytest.fixture
def headers(make_key: KeyFactory) -> dict[str, str]:
    return bearer(make_key("ingest", "read"))


def stored(db: Engine) -> dict[str, Any]:
    with db.connect() as connection:
        return {row.event_id: row for row in connection.execute(select(Event))}


def post(client: TestClient, headers: dict[str, str], body: Any) -> Any:
    response = client.post("/v1/events", json=body, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def test_valid_batch_is_stored_with_every_field(
    client: TestClient,
    headers: dict[str, str],
    db: Engine,
) -> None:
    full = event(
        event_id="order-1",
        amount="59.90",
        currency="USD",
        items=[
            {"sku": "TS-1", "category": "apparel", "name": "Tee", "quantity": 2, "price": "29.95"}
        ],
        source="web",
        properties={"coupon": "WELCOME", "first_order": True, "basket_size": 2},
    )
    view = event(event_id="view-1", type="view", amount=None)

    result = post(client, headers, batch(full, view))

    assert result == {"accepted": 2, "duplicates": 0, "rejected": 0, "rejections": []}
    rows = stored(db)
    order = rows["order-1"]
    assert order.customer_id == "c-1"
    assert order.type == "purchase"
    assert order.occurred_at == BASE_TIME
    assert order.amount == Decimal("59.90")
    assert order.currency == "USD"
    assert order.items == [
        {"sku": "TS-1", "category": "apparel", "name": "Tee", "quantity": 2, "price": "29.95"}
    ]
    assert order.source == "web"
    assert order.properties == {"coupon": "WELCOME", "first_order": True, "basket_size": 2}
    assert rows["view-1"].amount is None
    assert rows["view-1"].currency is None


def test_partial_batch_stores_valid_events_and_explains_each_rejection(
    client: TestClient,
    headers: dict[str, str],
    db: Engine,
) -> None:
    body = batch(
        event(event_id="ok-1"),
        event(event_id="bad-1", amount="-5"),
        event(event_id="ok-2"),
        {"event_id": "bad-2"},
        "not an object",
    )

    result = post(client, headers, body)

    assert (result["accepted"], result["duplicates"], result["rejected"]) == (2, 0, 3)
    assert [(r["index"], r["event_id"]) for r in result["rejections"]] == [
        (1, "bad-1"),
        (3, "bad-2"),
        (4, None),
    ]
    assert "amount" in result["rejections"][0]["reason"]
    assert "customer_id: Field required" in result["rejections"][1]["reason"]
    assert set(stored(db)) == {"ok-1", "ok-2"}


NOW = datetime.now(UTC)


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"event_id": ""}, "event_id: String should have at least 1 character"),
        ({"event_id": "x" * 129}, "event_id: String should have at most 128 characters"),
        ({"event_id": "bad\nid"}, "event_id: must contain only printable characters"),
        ({"customer_id": "a\x00b"}, "customer_id: must contain only printable characters"),
        ({"customer_id": "shop/42"}, "no '/' (it could not be used in a URL path)"),
        ({"type": "purchased"}, "type: Input should be 'purchase'"),
        ({"occurred_at": "2026-01-15T12:00:00"}, "occurred_at: Input should have timezone info"),
        ({"occurred_at": "yesterday"}, "occurred_at: Input should be a valid datetime"),
        ({"occurred_at": iso(NOW + timedelta(hours=1))}, "is in the future"),
        ({"occurred_at": "1969-12-31T23:59:59Z"}, "is before 1970"),
        ({"occurred_at": "9999-12-31T23:00:00-05:00"}, "is out of the supported range"),
        ({"amount": None}, "amount: required for purchase events"),
        ({"type": "refund", "amount": None}, "amount: required for refund events"),
        ({"amount": "-0.01"}, "amount: Input should be greater than or equal to 0"),
        ({"amount": "1.23456"}, "no more than 4 decimal places"),
        ({"amount": "1" * 15 + ".0"}, "no more than 14 digits before the decimal point"),
        ({"amount": "NaN"}, "amount: Input should be a finite number"),
        ({"amount": "ten"}, "amount: Input should be a valid decimal"),
        ({"currency": "EUR"}, "currency: EUR is not the shop currency USD"),
        ({"currency": "usd"}, "currency: String should match pattern"),
        (
            {"items": [{"sku": f"s{i}"} for i in range(1_001)]},
            "items: List should have at most 1000",
        ),
        ({"items": [{"sku": "s", "quantity": 0}]}, "items.0.quantity: Input should be greater"),
        ({"items": [{"quantity": 1}]}, "items.0.sku: Field required"),
        ({"items": [{"sku": "s", "price": "-1"}]}, "items.0.price: Input should be greater"),
        ({"properties": {f"k{i}": i for i in range(51)}}, "properties: Dictionary should have"),
        ({"properties": {"nested": {"a": 1}}}, "properties.nested"),
        ({"properties": {"long": "x" * 1025}}, "at most 1024 characters"),
        ({"properties": {"bad key": 1}}, "String should match pattern"),
        ({"source": "x" * 65}, "source: String should have at most 64 characters"),
        ({"ammount": "1.00"}, "ammount: Extra inputs are not permitted"),
    ],
)
def test_each_validation_rule_rejects_with_a_reason(
    client: TestClient,
    headers: dict[str, str],
    fields: dict[str, Any],
    reason: str,
    db: Engine,
) -> None:
    bad = event(event_id="bad")
    bad.update(fields)
    if fields.get("amount", "") is None:
        del bad["amount"]

    result = post(client, headers, batch(event(event_id="good"), bad))

    assert result["accepted"] == 1
    assert result["rejected"] == 1
    assert reason in result["rejections"][0]["reason"], result["rejections"][0]["reason"]
    assert set(stored(db)) == {"good"}


def test_clock_skew_within_tolerance_and_late_out_of_order_events_are_accepted(
    client: TestClient,
    headers: dict[str, str],
    db: Engine,
) -> None:
    now = datetime.now(UTC)
    body = batch(
        event(event_id="soon", occurred_at=now + timedelta(minutes=4)),
        event(event_id="old", occurred_at=now - timedelta(days=900)),
        event(event_id="older", occurred_at=now - timedelta(days=2000)),
        event(event_id="offset", occurred_at="2026-01-15T09:00:00-05:00"),
    )

    assert post(client, headers, body)["accepted"] == 4
    assert stored(db)["offset"].occurred_at == datetime(2026, 1, 15, 14, tzinfo=UTC)


def test_zero_amount_purchases_are_accepted(client: TestClient, headers: dict[str, str]) -> None:
    assert post(client, headers, batch(event(amount="0"), event(amount=0)))["accepted"] == 2


@pytest.mark.parametrize("amount", ["999999999.9999", 999999999.9999, 0.1, "0.3000", 19.99, 7])
def test_amounts_are_kept_exactly_as_sent(
    client: TestClient,
    headers: dict[str, str],
    amount: Any,
    db: Engine,
) -> None:
    if isinstance(amount, float):
        # Sent as the JSON number literal, not through a Python float round trip.
        literal = {0.1: "0.1", 19.99: "19.99"}.get(amount, "999999999.9999")
        content = (
            '{"events": [{"event_id": "e", "customer_id": "c", "type": "purchase", '
            f'"occurred_at": "2026-01-15T12:00:00Z", "amount": {literal}}}]}}'
        )
        response = client.post(
            "/v1/events",
            content=content,
            headers={**headers, "Content-Type": "application/json"},
        )
        assert response.json()["accepted"] == 1
        expected = Decimal(literal)
    else:
        post(client, headers, batch(event(event_id="e", amount=amount)))
        expected = Decimal(str(amount))
    assert stored(db)["e"].amount == expected


def test_duplicates_within_a_batch_and_across_batches_are_stored_once(
    client: TestClient,
    headers: dict[str, str],
    db: Engine,
) -> None:
    first = post(
        client, headers, batch(event(event_id="a"), event(event_id="a"), event(event_id="b"))
    )
    again = post(client, headers, batch(event(event_id="a", amount="99"), event(event_id="c")))

    assert (first["accepted"], first["duplicates"]) == (2, 1)
    assert (again["accepted"], again["duplicates"]) == (1, 1)
    rows = stored(db)
    assert sorted(rows) == ["a", "b", "c"]
    assert rows["a"].amount == Decimal("10.00")  # the first write wins; a resend changes nothing


@pytest.mark.parametrize(
    "body",
    [
        [],
        {},
        {"events": []},
        {"events": "e-1"},
        {"events": [event()], "extra": 1},
        "events",
    ],
)
def test_a_body_that_is_not_a_batch_is_422(
    client: TestClient, headers: dict[str, str], body: Any
) -> None:
    response = client.post("/v1/events", json=body, headers=headers)

    assert response.status_code == 422
    assert response.json()["code"] == "validation_error"
    assert response.json()["message"]


@pytest.mark.parametrize(
    "content",
    [
        b'{"events": [',
        b'{"events": [{"amount": NaN}]}',
        b'{"events": [{"amount": Infinity}]}',
        b'{"events": "\xff\xfe"}',
        b"[" * 100_000 + b"]" * 100_000,
    ],
    ids=["truncated", "nan", "infinity", "invalid-utf8", "deeply-nested"],
)
def test_invalid_json_is_422_not_500(
    client: TestClient, headers: dict[str, str], content: bytes
) -> None:
    response = client.post(
        "/v1/events", content=content, headers={**headers, "Content-Type": "application/json"}
    )

    assert response.status_code == 422
    assert response.json()["code"] == "validation_error"


def test_more_events_than_the_limit_is_413_and_stores_nothing(
    client: TestClient,
    headers: dict[str, str],
    settings: Settings,
    db: Engine,
) -> None:
    events = [event(event_id=f"e{i}", amount="1") for i in range(settings.max_batch_events + 1)]

    response = client.post("/v1/events", json=batch(*events), headers=headers)

    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"
    assert "at most 10000 events" in response.json()["message"]
    assert stored(db) == {}


def test_the_event_limit_is_configurable(settings: Settings, make_key: KeyFactory) -> None:
    small = settings.model_copy(update={"max_batch_events": 3})
    with TestClient(create_app(small)) as client:
        headers = bearer(make_key("ingest"))
        ok = client.post("/v1/events", json=batch(*[event() for _ in range(3)]), headers=headers)
        too_many = client.post(
            "/v1/events", json=batch(*[event() for _ in range(4)]), headers=headers
        )
    assert ok.status_code == 200
    assert too_many.status_code == 413


def _raw_request(url: str, head: str, body_parts: list[bytes]) -> tuple[int, dict[str, Any]]:
    """Send a request head and some body bytes over a socket, without finishing the body, and
    read the answer: only a server that answers before reading the whole body can reply."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        connection.sendall(head.encode())
        for part in body_parts:
            connection.sendall(part)
        response = b""
        while b"\r\n\r\n" not in response or not response.rstrip().endswith(b"}"):
            chunk = connection.recv(65536)
            if not chunk:
                break
            response += chunk
    status = int(response.split(b" ", 2)[1])
    return status, json.loads(response.split(b"\r\n\r\n", 1)[1].split(b"\r\n")[-1] or b"{}")


def test_an_oversized_body_is_413_before_it_is_read(
    settings: Settings, make_key: KeyFactory
) -> None:
    limited = settings.model_copy(update={"max_body_bytes": 2048})
    token = make_key("ingest")
    head = (
        "POST /v1/events HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {token}\r\n"
    )
    with serve_app(limited) as url:
        # A gigabyte is announced and none of it sent: only an early answer gets back.
        declared = _raw_request(url, head + "Content-Length: 1000000000\r\n\r\n", [])
        # A chunked body that passes the limit and never ends.
        chunk = b"400\r\n" + b" " * 1024 + b"\r\n"
        streamed = _raw_request(url, head + "Transfer-Encoding: chunked\r\n\r\n", [chunk] * 3)

    for status, body in (declared, streamed):
        assert status == 413
        assert body["code"] == "payload_too_large"
        assert "CLV_MAX_BODY_BYTES" in body["message"]
