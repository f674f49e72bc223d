"""Hostile inputs, aimed: bodies that are not JSON or are too big on every JSON endpoint, NaN and
Infinity amounts, ids carrying SQL, path separators, emoji, right-to-left text and control
characters, timestamps far in the past and the future. Each is either stored and read back
verbatim or refused with a 4xx JSON error that says why; none is a 500, on either backend.

POST /v1/events' own malformed bodies (truncated, NaN, Infinity, invalid UTF-8, deep nesting) and
its field rules are in tests/events/test_ingest.py; this file does not repeat them.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import httpx2 as httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from service.config import Settings
from service.events.models import Event
from service.main import create_app
from service.scoring.models import Score
from tests.conftest import KeyFactory, bearer
from tests.factories import batch, event, iso
from tests.fuzz.conftest import Target
from tests.test_openapi import COMMITTED

JSON = {"Content-Type": "application/json"}
MIB = 1024 * 1024

JSON_ENDPOINTS = [
    ("PATCH", "/v1/customers/c-1"),
    ("PUT", "/v1/customers/c-1"),
    ("POST", "/v1/clv/batch"),
    ("POST", "/v1/models"),
    ("POST", "/v1/models/v-1/promote"),
    ("POST", "/v1/models/rollback"),
]
ENDPOINT_IDS = [f"{method} {path}" for method, path in JSON_ENDPOINTS]


@pytest.fixture
def headers(make_key: KeyFactory) -> dict[str, str]:
    return {**bearer(make_key("admin")), **JSON}


def assert_refused(response: Any, status: int, code: str, why: str = "") -> None:
    """A JSON error of the documented shape, whose message or details say ``why``."""
    assert response.status_code == status, response.text
    body = response.json()
    assert body["code"] == code
    assert body["message"]
    assert body["request_id"] == response.headers["X-Request-ID"]
    assert why in body["message"] + json.dumps(body.get("details"), ensure_ascii=False), body


def rejection(client: TestClient, headers: dict[str, str], **fields: Any) -> str:
    """The reason the one event built from ``fields`` is rejected (it must be)."""
    response = client.post("/v1/events", json=batch(event(**fields)), headers=headers)
    assert response.status_code == 200, response.text
    result = response.json()
    assert (result["accepted"], result["rejected"]) == (0, 1), result
    return str(result["rejections"][0]["reason"])


# -- Bodies that are not JSON, or too much of it -------------------------------------------------

MALFORMED = {
    "truncated": b'{"source": "crm", "attributes": {',
    "nan": b'{"source": "crm", "attributes": {"a": NaN}, "alias": NaN}',
    "infinity": b'{"customer_ids": ["c-1"], "horizon_days": Infinity}',
    "minus-infinity": b'{"customer_ids": ["c-1"], "epochs": -Infinity}',
    "invalid-utf8": b'{"source": "\xff\xfe", "alias": "\xc3\x28"}',
    "deeply-nested": b"[" * 100_000 + b"]" * 100_000,
    "form-data": b"source=crm&attributes=a",
}


@pytest.mark.parametrize(("method", "path"), JSON_ENDPOINTS, ids=ENDPOINT_IDS)
def test_a_body_that_is_not_json_is_a_422_on_every_json_endpoint(
    client: TestClient, headers: dict[str, str], method: str, path: str
) -> None:
    for name, content in MALFORMED.items():
        response = client.request(method, path, content=content, headers=headers)

        assert response.status_code == 422, name  # which malformed body, when it fails
        assert_refused(response, 422, "validation_error")


def test_a_body_over_the_limit_is_a_413_on_every_json_endpoint(
    client: TestClient, headers: dict[str, str], settings: Settings
) -> None:
    filler = b"x" * (settings.max_body_bytes + MIB)
    content = b'{"source": "crm", "attributes": {"a": "' + filler + b'"}}'

    for method, path in JSON_ENDPOINTS:
        response = client.request(method, path, content=content, headers=headers)

        assert_refused(response, 413, "payload_too_large", "CLV_MAX_BODY_BYTES")


def test_huge_json_within_the_limit_is_refused_for_its_size_with_a_reason(
    client: TestClient, headers: dict[str, str]
) -> None:
    many = {f"a{i}": i for i in range(200_000)}  # about 3 MiB: under the body limit
    long_text = "x" * MIB

    too_many = client.patch(
        "/v1/customers/c-1", json={"source": "crm", "attributes": many}, headers=headers
    )
    too_long = client.put(
        "/v1/customers/c-1", json={"source": "crm", "attributes": {"a": long_text}}, headers=headers
    )

    assert_refused(too_many, 422, "validation_error", "at most 100 items")
    assert_refused(too_long, 422, "validation_error", "at most 1024 characters")
    assert client.get("/v1/customers/c-1", headers=headers).status_code == 404


# -- NaN, Infinity and numbers beyond range ------------------------------------------------------

NOT_FINITE = {
    "Infinity": "Input should be a finite number",
    "-Infinity": "Input should be a finite number",
    "inf": "Input should be a finite number",
    "NaN": "Input should be a finite number",
    "sNaN": "Input should be a finite number",
    "1e309": "Decimal input should have no more than 18 digits in total",
    "-1E+400": "Decimal input should have no more than 18 digits in total",
}


def test_non_finite_amounts_and_prices_as_strings_are_rejected_with_a_reason(
    client: TestClient, headers: dict[str, str]
) -> None:
    amounts = [event(amount=value) for value in NOT_FINITE]
    prices = [event(items=[{"sku": "s-1", "price": value}]) for value in NOT_FINITE]

    result = client.post("/v1/events", json=batch(*amounts, *prices), headers=headers).json()

    assert [rejected["reason"] for rejected in result["rejections"]] == [
        *(f"amount: {why}" for why in NOT_FINITE.values()),
        *(f"items.0.price: {why}" for why in NOT_FINITE.values()),
    ]


def test_numbers_too_large_for_a_float_are_refused_where_json_numbers_are_taken(
    client: TestClient, headers: dict[str, str]
) -> None:
    event_body = (
        '{"events": [{"event_id": "e-1", "customer_id": "c-1", "type": "purchase", '
        '"occurred_at": "2026-01-15T12:00:00Z", "amount": 1e309, "properties": {"k": 1e309}}]}'
    )
    attributes_body = '{"source": "crm", "attributes": {"ratio": 1e309}}'

    events = client.post("/v1/events", content=event_body, headers=headers).json()
    attributes = client.patch("/v1/customers/c-1", content=attributes_body, headers=headers)

    assert events["rejected"] == 1
    assert (
        "amount: Decimal input should have no more than 18 digits"
        in events["rejections"][0]["reason"]
    )
    assert (
        "properties.k.float: Input should be a finite number" in events["rejections"][0]["reason"]
    )
    assert_refused(attributes, 422, "validation_error", "Input should be a finite number")


def test_number_like_text_is_text_kept_verbatim_and_never_read_as_a_number(
    client: TestClient, headers: dict[str, str]
) -> None:
    """Found by schemathesis: a numeric string over 1024 characters failed the text rule and was
    then read as a float, so 1,025 zeros were stored as 0.0."""
    texts = {"a": "NaN", "b": "Infinity", "c": "1e309", "d": "0" * 1024, "e": "-0", "f": "007"}

    stored = client.put(
        "/v1/customers/c-1", json={"source": "crm", "attributes": texts}, headers=headers
    )
    too_long = client.patch(
        "/v1/customers/c-1",
        json={"source": "crm", "attributes": {"z": "0" * 1025}},
        headers=headers,
    )

    assert stored.status_code == 200, stored.text
    assert stored.json()["sources"][0]["attributes"] == texts
    assert_refused(too_long, 422, "validation_error", "at most 1024 characters")
    reason = rejection(client, headers, properties={"z": "1" + "0" * 1024})
    assert "at most 1024 characters" in reason
    profile = client.get("/v1/customers/c-1", headers=headers).json()
    assert profile["sources"][0]["attributes"] == texts


# -- Ids: SQL, path separators, emoji, right-to-left text, control characters --------------------

VERBATIM_CUSTOMER_IDS = {
    "sql": "'; DROP TABLE events;--",
    "sql-quote": "Robert'); DELETE FROM customer_attributes WHERE ('1'='1",
    "encoded-slash": "%2F",
    "backslash": "a\\b",
    "three-dots": "...",
    "dot-dir": ".config",
    "query-and-fragment": "?q=1&x=2#top",
    "emoji": "🛒顧客-42",
    "arabic": "عميل-٤٢",
    "hebrew-and-latin": "לקוח-abc",
    "spaces": " padded id ",
    "longest": "x" * 128,
}


def test_customer_ids_are_kept_verbatim_through_events_urls_and_erasure(
    live_server: str, make_key: KeyFactory
) -> None:
    """Over real HTTP (uvicorn decodes the path, not a test transport): each id is stored by an
    event, then read, changed and erased at its percent-encoded URL."""
    seen: dict[str, tuple[Any, ...]] = {}
    with httpx.Client(base_url=live_server, headers=bearer(make_key("admin"))) as api:
        for name, customer_id in VERBATIM_CUSTOMER_IDS.items():
            url = f"/v1/customers/{quote(customer_id, safe='')}"
            stored = api.post("/v1/events", json=batch(event(customer_id=customer_id))).json()
            patched = api.patch(url, json={"source": "crm", "attributes": {"note": customer_id}})
            read = api.get(url).json()
            erased = api.delete(url).status_code
            gone = api.get(url).status_code
            seen[name] = (
                stored["accepted"],
                patched.status_code,
                read.get("customer_id") == customer_id,
                read.get("activity", {}).get("events"),
                read.get("profile", {}).get("note", {}).get("value") == customer_id,
                erased,
                gone,
            )

    assert seen == dict.fromkeys(VERBATIM_CUSTOMER_IDS, (1, 200, True, 1, True, 204, 404))


REFUSED_CUSTOMER_IDS = {
    "dot": (".", "must not be '.' or '..'"),
    "dot-dot": ("..", "must not be '.' or '..'"),
    "traversal": ("../admin", "no '/'"),
    "tab": ("a\tb", "printable"),
    "escape": ("\x1b[31mred", "printable"),
    "delete": ("a\x7f", "printable"),
    "rtl-override": ("user\u202eexe.txt", "printable"),
    "zero-width": ("ad\u200bmin", "printable"),
    "byte-order-mark": ("\ufeffc-1", "printable"),
    "too-long": ("x" * 129, "at most 128 characters"),
}


def test_customer_ids_that_could_not_be_addressed_are_refused_with_a_reason(
    live_server: str, make_key: KeyFactory
) -> None:
    """'.' and '..' were stored, then out of reach: clients resolve them as dot segments, so
    such a customer could be neither read nor erased. At its URL each id is a 4xx too."""
    ids = list(REFUSED_CUSTOMER_IDS.values())
    with httpx.Client(base_url=live_server, headers=bearer(make_key("admin"))) as api:
        sent = api.post("/v1/events", json=batch(*[event(customer_id=i) for i, _ in ids])).json()
        patched = [
            api.patch(
                f"/v1/customers/{quote(i, safe='')}", json={"source": "crm", "attributes": {}}
            )
            for i, _ in ids
        ]

    reasons = [rejected["reason"] for rejected in sent["rejections"]]
    assert sent["accepted"] == 0
    unexplained = {
        name: reason
        for name, (_, why), reason in zip(REFUSED_CUSTOMER_IDS, ids, reasons, strict=True)
        if not (reason.startswith("customer_id: ") and why in reason)
    }
    assert unexplained == {}
    assert {(r.status_code, r.json()["code"]) for r in patched} <= {
        (422, "validation_error"),
        (404, "not_found"),  # '/' or a dot segment: the path names no customer route at all
    }


VERBATIM_EVENT_IDS = [
    "'; DROP TABLE events;--",
    "a/b",
    "../../etc/passwd",
    "%2F..%2F",
    "🧾-42",
    "فاتورة-٤٢",
    "C:\\orders\\1",
    "x" * 128,
]


def test_event_ids_are_stored_verbatim_and_resending_them_is_a_duplicate(
    client: TestClient, headers: dict[str, str], db: Engine
) -> None:
    events = batch(*[event(event_id=event_id) for event_id in VERBATIM_EVENT_IDS])

    first = client.post("/v1/events", json=events, headers=headers).json()
    again = client.post("/v1/events", json=events, headers=headers).json()

    assert first["accepted"] == len(VERBATIM_EVENT_IDS), first
    assert again["duplicates"] == len(VERBATIM_EVENT_IDS), again
    with db.connect() as connection:
        stored = set(connection.scalars(select(Event.event_id)))
    assert stored == set(VERBATIM_EVENT_IDS)


def test_an_event_id_json_cannot_encode_back_is_rejected_without_quoting_it(
    client: TestClient, headers: dict[str, str]
) -> None:
    """Found here: a lone surrogate escape ("\\ud800") in an event id was quoted back in the
    rejection, and the answer could not be encoded: a 500."""
    body = (
        '{"events": [{"event_id": "e-\\ud800", "customer_id": "c-1", "type": "view", '
        '"occurred_at": "2026-01-15T12:00:00Z"}]}'
    )

    result = client.post("/v1/events", content=body, headers=headers).json()

    assert result["rejections"] == [
        {
            "index": 0,
            "event_id": None,
            "reason": "event_id: Input should be a valid string, "
            "unable to parse raw data as a unicode string",
        }
    ]


# -- Free text: emoji, RTL, control characters, NUL ----------------------------------------------

VERBATIM_TEXT = {
    "emoji": "🛍️ 👩🏽‍💻",
    "rtl": "مرحبا بالعالم",
    "rtl-override": "abc\u202edef",
    "bidi-mixed": "שלום world 123",
    "controls": "bell\x07 escape\x1b[31m del\x7f",
    "newlines": "line 1\nline 2\r\n\ttabbed",
    "sql": "'; DROP TABLE customer_attributes;--",
    "html": "<script>alert(1)</script>",
}


def test_attribute_text_is_stored_and_returned_verbatim(
    client: TestClient, headers: dict[str, str]
) -> None:
    put = client.put(
        "/v1/customers/c-1", json={"source": "crm", "attributes": VERBATIM_TEXT}, headers=headers
    )
    read = client.get("/v1/customers/c-1", headers=headers)

    assert put.status_code == 200, put.text
    assert read.json()["sources"][0]["attributes"] == VERBATIM_TEXT
    assert {key: value["value"] for key, value in read.json()["profile"].items()} == VERBATIM_TEXT


def test_nul_in_free_text_is_refused_with_a_reason(
    client: TestClient, headers: dict[str, str]
) -> None:
    """Found here: PostgreSQL cannot store NUL in text or JSON, so a NUL in an attribute, an
    event's source, a property or an item's name or category was a 500 there (and stored on
    SQLite). It is refused on both."""
    why = "must not contain the NUL character"

    attribute = client.patch(
        "/v1/customers/c-1", json={"source": "crm", "attributes": {"a": "x\x00y"}}, headers=headers
    )

    assert_refused(attribute, 422, "validation_error", why)
    assert why in rejection(client, headers, source="we\x00b")
    assert why in rejection(client, headers, properties={"k": "\x00"})
    assert why in rejection(client, headers, items=[{"sku": "s-1", "name": "n\x00"}])
    assert why in rejection(client, headers, items=[{"sku": "s-1", "category": "\x00"}])


# -- Timestamps far in the past and the future ---------------------------------------------------


FAR_MOMENTS = {
    "0001-01-01T00:00:00Z": "occurred_at: 0001-01-01T00:00:00+00:00 is before 1970",
    "0001-01-01T00:00:00+01:00": "occurred_at: 0001-01-01T00:00:00+01:00 is out of the supported",
    "1900-01-01T00:00:00Z": "occurred_at: 1900-01-01T00:00:00+00:00 is before 1970",
    "9999-12-31T23:59:59Z": "occurred_at: 9999-12-31T23:59:59+00:00 is in the future",
    "9999-12-31T23:59:59+14:00": "occurred_at: 9999-12-31T09:59:59+00:00 is in the future",
}


def test_events_far_in_the_past_or_future_are_rejected_with_a_reason(
    client: TestClient, headers: dict[str, str]
) -> None:
    events = [event(occurred_at=moment) for moment in FAR_MOMENTS]

    result = client.post("/v1/events", json=batch(*events), headers=headers).json()

    reasons = [rejected["reason"] for rejected in result["rejections"]]
    unexplained = {
        moment: reason
        for (moment, why), reason in zip(FAR_MOMENTS.items(), reasons, strict=True)
        if not reason.startswith(why)
    }
    assert unexplained == {}


def test_the_earliest_plausible_moment_is_accepted(
    client: TestClient, headers: dict[str, str]
) -> None:
    result = client.post(
        "/v1/events", json=batch(event(occurred_at="1970-01-01T00:00:00Z")), headers=headers
    ).json()

    assert result["accepted"] == 1, result


def test_the_future_tolerance_follows_its_setting(settings: Settings, make_key: KeyFactory) -> None:
    tolerant = settings.model_copy(update={"max_future_skew_seconds": 3600})
    now = datetime.now(UTC)
    with TestClient(create_app(tolerant)) as client:
        headers = bearer(make_key("ingest"))
        result = client.post(
            "/v1/events",
            json=batch(
                event(occurred_at=iso(now + timedelta(minutes=50))),
                event(occurred_at=iso(now + timedelta(minutes=70))),
            ),
            headers=headers,
        ).json()

    assert (result["accepted"], result["rejected"]) == (1, 1), result
    assert "tolerance 1:00:00" in result["rejections"][0]["reason"]


UNREPRESENTABLE = ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-14:00"]
"""Valid ISO 8601 with a time zone, but with no UTC equivalent (before year 1, after 9999)."""


def test_a_query_moment_with_no_utc_equivalent_is_a_422(
    client: TestClient, headers: dict[str, str]
) -> None:
    """Found here: the features' as_of and the history's before were compared or stored as
    given, and failed there: a 500."""
    client.post("/v1/events", json=batch(event()), headers=headers)
    queries = [
        ("/v1/customers/c-1/features", "as_of"),
        ("/v1/customers/c-1/clv", "as_of"),
        ("/v1/customers/c-1/clv/history", "before"),
    ]

    for path, parameter in queries:
        for moment in UNREPRESENTABLE:
            response = client.get(path, params={parameter: moment}, headers=headers)

            why = f"{moment} is out of the supported range"
            assert_refused(response, 422, "validation_error", why)


def a_scored_customer(target: Target) -> str:
    with target.session_factory() as session:
        return str(session.scalar(select(Score.customer_id).order_by(Score.customer_id).limit(1)))


@pytest.mark.parametrize(
    ("moment", "why"),
    [
        ("0001-01-01T00:00:00Z", "is outside what champion"),
        ("1900-01-01T00:00:00Z", "is outside what champion"),
        ("9999-12-31T23:59:59Z", "is outside what champion"),
        ("0001-01-01T00:00:00+01:00", "is out of the supported range"),
        ("9999-12-31T23:59:59-14:00", "is out of the supported range"),
    ],
)
def test_scores_as_of_far_moments_are_refused_with_a_reason(
    scored_target: Target, moment: str, why: str
) -> None:
    customer = a_scored_customer(scored_target)
    with httpx.Client(base_url=scored_target.base_url, headers=scored_target.headers) as api:
        one = api.get(f"/v1/customers/{customer}/clv", params={"as_of": moment})
        many = api.post("/v1/clv/batch", json={"customer_ids": [customer], "as_of": moment})

    assert_refused(one, 422, "validation_error", why)
    assert_refused(many, 422, "validation_error", why)


@pytest.mark.parametrize(
    ("moment", "entries"),
    [
        ("0001-01-01T00:00:00Z", False),
        ("1900-01-01T00:00:00Z", False),
        ("9999-12-31T23:59:59Z", True),
    ],
)
def test_history_pages_before_far_moments_are_empty_or_everything(
    scored_target: Target, moment: str, entries: bool
) -> None:
    customer = a_scored_customer(scored_target)
    with httpx.Client(base_url=scored_target.base_url, headers=scored_target.headers) as api:
        history = api.get(f"/v1/customers/{customer}/clv/history", params={"before": moment})

    assert history.status_code == 200, history.text
    assert bool(history.json()["entries"]) is entries


# -- Methods a path does not serve ---------------------------------------------------------------


def test_a_method_the_path_does_not_serve_is_a_405_listing_all_it_does(
    client: TestClient, headers: dict[str, str]
) -> None:
    """Found by schemathesis: Starlette's 405 named only the methods of the first route that
    matched the path (``Allow: PATCH`` for a customer)."""
    customer = {"GET", "PUT", "PATCH", "DELETE"}
    cases = [
        ("OPTIONS", "/v1/customers/c-1", customer),
        ("POST", "/v1/customers/c-1", customer),
        ("DELETE", "/v1/models", {"GET", "POST"}),
        ("GET", "/v1/events", {"POST"}),
    ]

    for method, path, allowed in cases:
        response = client.request(method, path, headers=headers)

        assert_refused(response, 405, "method_not_allowed")
        assert set(response.headers["Allow"].split(", ")) == allowed, (method, path)


# -- Path parameters beyond what the store holds, and the metrics' content type ---------------


def test_a_job_id_beyond_the_column_is_a_422(client: TestClient, headers: dict[str, str]) -> None:
    read = client.get(f"/v1/jobs/{2**63}", headers=headers)
    cancel = client.post(f"/v1/jobs/{2**63}/cancel", headers=headers)

    assert_refused(read, 422, "validation_error")
    assert_refused(cancel, 422, "validation_error")


def test_a_version_with_nul_is_refused_not_a_500(
    client: TestClient, headers: dict[str, str]
) -> None:
    response = client.get("/v1/models/v%00-1", headers=headers)

    assert 400 <= response.status_code < 500, response.text


def test_the_committed_document_gives_metrics_their_content_type() -> None:
    document = json.loads(COMMITTED.read_text())

    assert "text/plain" in document["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
