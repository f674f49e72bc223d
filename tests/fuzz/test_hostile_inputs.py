"""Hostile inputs, aimed: bodies that are not JSON or are too big on every JSON endpoint, NaN and
Infinity amounts, ids carrying SQL, path separators, emoji, right-to-left text and control
characters, timestamps far in the past and the future. Each is either stored and read back
verbatim or refused with a 4xx JSON error that says why; none is a 500, on either backend.

POST /v1/events' own malformed bodies (truncated, NaN, Infinity, invalid UTF-8, deep nesting) and
its field rules are in tests/events/test_ingest.py; this file does not repeat them.
"""

from __future__ import annotations

import gzip
import json
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx2 as httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from service.api.server import JSONErrorsH11Protocol
from service.config import Settings
from service.db.session import make_session_factory
from service.events.models import Event
from service.exact_json import MAX_DEPTH
from service.main import create_app
from service.model_versions.models import ModelAlias, ModelVersion
from service.scoring.models import Score
from tests.conftest import KeyFactory, bearer, serve_app
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
    assert response.headers["content-type"] == "application/json"
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
    "truncated": (
        b'{"source": "crm", "attributes": {',
        "Expecting property name enclosed in double quotes at line 1, column 34",
    ),
    "syntax-on-line-3": (
        b'{\n  "source": "crm",\n  "attributes": {"a": 1,}\n}',
        "Expecting property name enclosed in double quotes at line 3, column 25",
    ),
    "nan": (
        b'{"source": "crm", "attributes": {"a": NaN}, "alias": NaN}',
        "NaN is not valid JSON (JSON has no NaN or Infinity)",
    ),
    "infinity": (
        b'{"customer_ids": ["c-1"], "horizon_days": Infinity}',
        "Infinity is not valid JSON",
    ),
    "minus-infinity": (
        b'{"customer_ids": ["c-1"], "epochs": -Infinity}',
        "-Infinity is not valid JSON",
    ),
    "invalid-utf8": (
        b'{"source": "\xff\xfe", "alias": "\xc3\x28"}',
        "invalid UTF-8 at byte 12 (0xFF): JSON must be encoded as UTF-8",
    ),
    "utf-16": ('{"source": "crm"}'.encode("utf-16"), "invalid UTF-8 at byte 0 (0xFF)"),
    "deeply-nested": (
        b"[" * 100_000 + b"]" * 100_000,
        "arrays and objects nest deeper than 32 levels",
    ),
    "gzip-without-its-header": (
        gzip.compress(b'{"source": "crm", "attributes": {}}'),
        "it starts as gzip does (0x1F 0x8B): compressed bodies are not accepted",
    ),
    "form-data": (b"source=crm&attributes=a", "Expecting value at line 1, column 1"),
}


@pytest.mark.parametrize(("method", "path"), JSON_ENDPOINTS, ids=ENDPOINT_IDS)
def test_a_body_that_is_not_json_is_a_422_saying_why_on_every_json_endpoint(
    client: TestClient, headers: dict[str, str], method: str, path: str
) -> None:
    """It was "Invalid request: body.0: JSON decode error" whatever was wrong."""
    for name, (content, why) in MALFORMED.items():
        response = client.request(method, path, content=content, headers=headers)

        assert response.status_code == 422, name  # which malformed body, when it fails
        assert_refused(response, 422, "validation_error", f"The body is not valid JSON: {why}")
        assert response.json()["details"][0]["type"] == "json_invalid"


def nested(depth: int) -> bytes:
    """Attributes whose one value nests ``depth`` arrays and objects in all (the body's own
    object and the attributes' count)."""
    value = b"1"
    for level in range(depth - 2):
        value = b'{"a": ' + value + b"}" if level % 2 else b"[" + value + b"]"
    return b'{"source": "crm", "attributes": {"a": ' + value + b"}}"


def test_nesting_is_refused_exactly_past_its_limit(
    client: TestClient, headers: dict[str, str]
) -> None:
    at_limit = client.patch("/v1/customers/c-1", content=nested(MAX_DEPTH), headers=headers)
    past_it = client.patch("/v1/customers/c-1", content=nested(MAX_DEPTH + 1), headers=headers)

    # At the limit the body is JSON, and the attribute (not a scalar) is what is refused.
    assert_refused(at_limit, 422, "validation_error", "body.attributes.a")
    assert at_limit.json()["details"][0]["type"] != "json_invalid"
    assert_refused(past_it, 422, "validation_error", f"nest deeper than {MAX_DEPTH} levels")


NOT_JSON_TYPES = {
    "text/plain": "Content-Type 'text/plain' is not accepted: send the body as application/json",
    "application/x-www-form-urlencoded": "Content-Type 'application/x-www-form-urlencoded' is "
    "not accepted: send the body as application/json",
    "multipart/form-data; boundary=x": "Content-Type 'multipart/form-data; boundary=x' is not "
    "accepted",
    "text/json": "Content-Type 'text/json' is not accepted",
    "application/json; charset=latin-1": "charset 'latin-1' is not accepted: application/json "
    "is UTF-8",
}


@pytest.mark.parametrize(("method", "path"), JSON_ENDPOINTS, ids=ENDPOINT_IDS)
def test_a_body_not_sent_as_json_is_a_415_naming_the_type_expected(
    client: TestClient, headers: dict[str, str], method: str, path: str
) -> None:
    """It was a 422 "Input should be a valid dictionary or object to extract fields from"."""
    content = b'{"source": "crm", "attributes": {}}'
    for content_type, why in NOT_JSON_TYPES.items():
        sent = {**headers, "Content-Type": content_type}
        response = client.request(method, path, content=content, headers=sent)

        assert_refused(response, 415, "unsupported_media_type", why)


@pytest.mark.parametrize("coding", ["gzip", "br", "deflate", "zstd", "gzip, identity"])
def test_a_compressed_body_is_a_415(
    client: TestClient, headers: dict[str, str], coding: str
) -> None:
    body = json.dumps({"source": "crm", "attributes": {"a": 1}}).encode()
    content = gzip.compress(body) if coding.startswith("gzip") else body

    for method, path in JSON_ENDPOINTS:
        response = client.request(
            method, path, content=content, headers={**headers, "Content-Encoding": coding}
        )

        assert_refused(
            response, 415, "unsupported_media_type", "compressed bodies are not accepted"
        )
        assert response.headers["Accept-Encoding"] == "identity"


def test_json_types_are_accepted_whatever_their_parameters_or_suffix(
    client: TestClient, headers: dict[str, str]
) -> None:
    body = json.dumps({"source": "crm", "attributes": {"a": 1}}).encode()
    for content_type in [
        "application/json",
        "application/json; charset=utf-8",
        "Application/JSON; charset=UTF-8",
        "application/json; charset=us-ascii",
        "application/merge-patch+json",
    ]:
        sent = {**headers, "Content-Type": content_type, "Content-Encoding": "identity"}
        response = client.patch("/v1/customers/c-1", content=body, headers=sent)

        assert response.status_code == 200, (content_type, response.text)


def test_a_body_without_a_content_type_is_read_as_json(
    client: TestClient, headers: dict[str, str]
) -> None:
    """As ``requests.post(url, data=json.dumps(...))`` sends it: what the client means is JSON
    (the decision is in service/api/routing.py and the README's API section)."""
    bare = {key: value for key, value in headers.items() if key != "Content-Type"}
    good = json.dumps({"source": "crm", "attributes": {"a": 1}}).encode()

    stored = client.put("/v1/customers/c-1", content=good, headers=bare)
    broken = client.put("/v1/customers/c-1", content=b"source=crm", headers=bare)

    assert "content-type" not in stored.request.headers
    assert stored.status_code == 200, stored.text
    assert stored.json()["sources"][0]["attributes"] == {"a": 1}
    why = "The body is not valid JSON (sent without a Content-Type): Expecting value"
    assert_refused(broken, 422, "validation_error", why)


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


# -- Paths, queries and date-times the server would have guessed at ------------------------------

NOT_UTF8 = [
    (
        "/v1/customers/%FF",
        "the path is not valid UTF-8 once percent-decoded (byte 0xFF at "
        "offset 14 of the decoded path)",
    ),
    ("/v1/customers/%C3%28", "the path is not valid UTF-8 once percent-decoded (byte 0xC3"),
    ("/v1/models/%ED%A0%80", "the path is not valid UTF-8"),  # an encoded surrogate
    (
        "/v1/customers/c-1/clv/history?before=%FF",
        "the query string is not valid UTF-8 once percent-decoded (byte 0xFF at offset 7",
    ),
    ("/v1/no-such-route/%FF", "the path is not valid UTF-8"),
]


def test_a_path_or_query_that_is_not_utf8_is_a_422_saying_which_byte(
    live_server: str, make_key: KeyFactory
) -> None:
    """Over real HTTP (uvicorn decodes the path). ``GET /v1/customers/%FF`` was a 404 "no
    customer '\ufffd'": the server had replaced the byte and looked up another id."""
    with httpx.Client(base_url=live_server, headers=bearer(make_key("admin"))) as api:
        for url, why in NOT_UTF8:
            assert_refused(api.get(url), 422, "validation_error", why)
        # U+FFFD itself, sent as its UTF-8 bytes, is an id like any other.
        replacement = api.get("/v1/customers/%EF%BF%BD")

    assert_refused(replacement, 404, "not_found", "no customer '\ufffd'")


NUMBERS_FOR_MOMENTS = ["0", "0.5", "1700000000", "-1", "1e9", " 12 "]


def test_a_number_where_a_moment_is_expected_is_a_422(
    client: TestClient, headers: dict[str, str]
) -> None:
    """``before=0.5`` and ``"as_of": 0`` were read as Unix times (1970), so a client that mixed
    up its parameters got an answer about 1970 instead of an error."""
    why = "Input should be an ISO 8601 date-time with a time zone, e.g. 2026-01-15T12:00:00Z, not a"
    client.post("/v1/events", json=batch(event()), headers=headers)
    for number in NUMBERS_FOR_MOMENTS:
        history = client.get(
            "/v1/customers/c-1/clv/history", params={"before": number}, headers=headers
        )
        features = client.get(
            "/v1/customers/c-1/features", params={"as_of": number}, headers=headers
        )
        score = client.get("/v1/customers/c-1/clv", params={"as_of": number}, headers=headers)

        assert_refused(history, 422, "validation_error", f"query.before: {why}")
        assert_refused(features, 422, "validation_error", f"query.as_of: {why}")
        assert_refused(score, 422, "validation_error", f"query.as_of: {why}")
    bodies = [
        ("/v1/clv/batch", {"customer_ids": ["c-1"], "as_of": 0}),
        ("/v1/clv/batch", {"customer_ids": ["c-1"], "as_of": 0.5}),
        ("/v1/clv/batch", {"customer_ids": ["c-1"], "as_of": "1700000000"}),
        ("/v1/models", {"horizon_days": 30, "as_of": 1700000000}),
        ("/v1/monitoring/drift", {"as_of": 0}),
        ("/v1/reports/fairness", {"as_of": 0}),
        ("/v1/learning/runs", {"as_of": 0}),
    ]
    for path, body in bodies:
        assert_refused(
            client.post(path, json=body, headers=headers),
            422,
            "validation_error",
            f"body.as_of: {why}",
        )


def test_a_boolean_in_a_body_is_true_or_false_not_a_number_or_a_word(
    client: TestClient, headers: dict[str, str]
) -> None:
    """``"without_protected_attributes": 0`` was read as false and the job queued."""
    for value in [0, 1, "true", "yes", "off"]:
        train = client.post(
            "/v1/models",
            json={"horizon_days": 30, "without_protected_attributes": value},
            headers=headers,
        )
        score = client.post(
            "/v1/clv/batch", json={"customer_ids": ["c-1"], "explain": value}, headers=headers
        )

        why = "Input should be a valid boolean"
        assert_refused(train, 422, "validation_error", f"body.without_protected_attributes: {why}")
        # explain also takes "shap" or "lime" (explain=lime): both readings are refused
        assert_refused(score, 422, "validation_error", f"body.explain.bool: {why}")
        assert "Input should be 'shap' or 'lime'" in score.json()["message"]


# -- What uvicorn answers before the app sees the request, and refused CORS preflights ---------


def exchange(base_url: str, request: bytes) -> tuple[int, dict[str, str], Any]:
    """Send raw bytes and read the whole answer: status, headers and the JSON body."""
    host, port = base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        connection.sendall(request)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    head, body = answer.split(b"\r\n\r\n", 1)
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {name.lower(): value for name, value in (line.split(": ", 1) for line in lines)}
    return int(status_line.split()[1]), headers, json.loads(body)


def assert_json_refusal(
    answer: tuple[int, dict[str, str], Any], status: int, code: str, why: str
) -> None:
    got, headers, body = answer
    assert got == status, body
    assert headers["content-type"] == "application/json"
    assert body["code"] == code
    assert why in body["message"], body
    assert body["request_id"] == headers["x-request-id"]


def test_requests_uvicorn_cannot_parse_get_a_json_error(live_server: str) -> None:
    """A 100,000-character path was a text/plain 400 "Invalid HTTP request received." from
    uvicorn, outside the API's error shape."""
    long_path = b"GET /v1/customers/" + b"a" * 100_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"
    bad_header = b"GET /healthz HTTP/1.1\r\nHost: x\r\nNo colon here\r\n\r\n"
    bad_method = b"G@T /healthz HTTP/1.1\r\nHost: x\r\n\r\n"

    assert_json_refusal(
        exchange(live_server, long_path),
        414,
        "url_too_long",
        "The URL is too long: at most 65,535 bytes",
    )
    assert_json_refusal(
        exchange(live_server, bad_header),
        400,
        "bad_request",
        "The request is not valid HTTP/1.1: Invalid header token",
    )
    assert_json_refusal(
        exchange(live_server, bad_method),
        400,
        "bad_request",
        "The request is not valid HTTP/1.1: Invalid method encountered",
    )


def test_with_h11_a_request_head_over_its_limit_is_a_json_431(settings: Settings) -> None:
    """h11, uvicorn's pure-Python parser, limits a request head still arriving; over it was a
    plain 400. (The head is sent without its end, as one larger than a read arrives.)"""
    huge_header = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20_000
    with serve_app(settings, http=JSONErrorsH11Protocol) as url:
        answer = exchange(url, huge_header)
        fine = httpx.get(f"{url}/healthz")

    assert_json_refusal(
        answer,
        431,
        "headers_too_large",
        "The request line and headers are too large: at most 16,384 bytes",
    )
    assert fine.status_code == 200


def test_a_refused_cors_preflight_is_a_json_400(settings: Settings) -> None:
    configured = settings.model_copy(update={"cors_origins": ["https://admin.example.com"]})
    preflight = {
        "Origin": "https://evil.example.com",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type",
    }
    with TestClient(create_app(configured)) as client:
        refused = client.options("/v1/events", headers=preflight)

    assert_refused(
        refused, 400, "cors_refused", "Disallowed CORS origin: not allowed by CLV_CORS_ORIGINS"
    )
    assert "access-control-allow-origin" not in refused.headers


# -- A champion that cannot be loaded ------------------------------------------------------------


def test_scores_with_a_champion_that_cannot_load_are_a_503_with_retry_after(
    settings: Settings, db: Engine, make_key: KeyFactory, tmp_path: Path
) -> None:
    """With no model loaded yet and the champion's artifact missing, every score read was a 409
    "artifact_refused", as if the client had asked for a conflicting change. The fault is the
    server's, and passes when the artifact is repaired or another version promoted: 503."""
    now = datetime.now(UTC)
    with make_session_factory(db)() as session, session.begin():
        session.add(
            ModelVersion(
                version="clv-gone",
                architecture="gru_ziln",
                horizon_days=365,
                trained_horizon_days=365,
                data_from=now - timedelta(days=400),
                data_to=now - timedelta(days=30),
                sha256="0" * 64,
                metrics={},
                created_at=now,
                created_by="test",
            )
        )
        session.flush()
        session.add(ModelAlias(alias="champion", version="clv-gone", updated_at=now))
    unloadable = settings.model_copy(update={"model_dir": tmp_path / "models"})
    headers = bearer(make_key("read"))
    with TestClient(create_app(unloadable)) as client:
        client.post("/v1/events", json=batch(event()), headers=bearer(make_key("ingest")))
        one = client.get("/v1/customers/c-1/clv", headers=headers)
        again = client.get("/v1/customers/c-1/clv", headers=headers)  # within the retry wait
        many = client.post("/v1/clv/batch", json={"customer_ids": ["c-1"]}, headers=headers)

    why = "champion clv-gone cannot be loaded and no earlier model is loaded to serve in its place"
    for response in (one, again, many):
        assert_refused(response, 503, "model_unavailable", why)
        assert "is incomplete" in response.json()["message"]
        assert 1 <= int(response.headers["Retry-After"]) <= 30


# -- What the committed document says about requests ----------------------------------------------


def test_the_committed_document_forbids_the_names_the_server_refuses() -> None:
    """The attribute and property maps documented their name pattern as patternProperties
    without ``additionalProperties: false``, so any other name was valid by the document and
    refused by the server."""
    schemas = json.loads(COMMITTED.read_text())["components"]["schemas"]
    attributes = schemas["CustomerAttributesUpdate"]["properties"]["attributes"]
    properties = schemas["EventCreate"]["properties"]["properties"]["anyOf"][0]

    for names in (attributes, properties):
        assert names["additionalProperties"] is False
        assert list(names["patternProperties"]) == ["^[A-Za-z0-9_.:-]+$"]


def test_the_committed_document_lists_415_wherever_a_body_is_taken() -> None:
    document = json.loads(COMMITTED.read_text())
    operations = [
        operation
        for methods in document["paths"].values()
        for operation in methods.values()
        if "requestBody" in operation
    ]

    assert len(operations) >= len(JSON_ENDPOINTS)
    assert [o["operationId"] for o in operations if "415" not in o["responses"]] == []
