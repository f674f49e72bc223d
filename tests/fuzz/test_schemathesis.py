"""Schemathesis against the committed OpenAPI document (openapi/openapi.json, what clients
generate their code from, not the app's live one): every operation, over real HTTP, with an admin
key, against a served shop with a champion (PostgreSQL by default: see conftest.py).

For each operation it sends the document's examples, boundary and invalid values (the coverage
phase) and ``CLV_TEST_FUZZ_EXAMPLES`` generated requests, valid and invalid (default 25; raise it
for a deeper local run, and change ``CLV_TEST_FUZZ_SEED`` to explore elsewhere: the fixed seed
makes a CI rerun send the same requests). Each answer must:

- not be a 5xx;
- have a status the document lists for the operation (or be a 405 with a correct ``Allow`` for a
  method it does not list), and the documented content type, body schema and headers;
- be a 401 when sent without credentials, for every operation that declares the bearer scheme.

Checks left out on purpose: ``negative_data_rejection`` and ``positive_data_acceptance`` judge
request validation against the schema, and the API is deliberately more lenient or stricter than
a static schema in documented ways (a batch with an invalid event is answered 200 with the event
in ``rejections``; rules that depend on the clock or the stored data, such as ``as_of`` in the
future, are 422; pydantic reads a number as a Unix time for a date-time). Those rules have their
own tests. No operation is excluded: training requests are only queued (no worker runs in these
tests), erasure erases.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx2 as httpx
import hypothesis
import pytest
import schemathesis
from schemathesis import Case

from service.jobs.worker import drain
from tests.factories import event, iso
from tests.fuzz.conftest import Target

COMMITTED = Path(__file__).resolve().parents[2] / "openapi" / "openapi.json"
EXAMPLES = int(os.environ.get("CLV_TEST_FUZZ_EXAMPLES", "25"))
SEED = int(os.environ.get("CLV_TEST_FUZZ_SEED", "20261128"))
KNOWN_CUSTOMER = "0"
"""Hypothesis's simplest string for an id, so generated paths often name a customer that exists."""

CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "response_headers_conformance",
    "unsupported_method",
    "allow_header_conformance",
    "ignored_auth",
)

_NO_RESPONSES = {"responses": False}
CONFIG = schemathesis.Config.from_dict(
    {
        "seed": SEED,
        "generation": {"max-examples": EXAMPLES, "database": "none"},
        "phases": {
            # Stateful runs chain operations through links, which the document does not declare.
            "stateful": {"enabled": False},
            # Generation led by what the server answered (its error messages, ids it returned)
            # would depend on the clock and on random ids, so the same seed would not give the
            # same requests: CI reruns must send exactly what failed.
            "fuzzing": {"error-feedback": {"enabled": False}, "extra-data-sources": _NO_RESPONSES},
            "coverage": {"extra-data-sources": _NO_RESPONSES},
            "examples": {"extra-data-sources": _NO_RESPONSES},
        },
        "checks": {"enabled": False, **{name: {"enabled": True} for name in CHECKS}},
        "operations": [
            {
                # Two bounded integers, whose boundaries the coverage phase sends anyway; each
                # request draws a chart (half a second), so generated ones add time, not cases.
                "include-operation-id": "get_feature_importance_chart",
                "generation": {"max-examples": min(EXAMPLES, 5)},
            },
            {
                # GET /v1/models/rollback is GET /v1/models/{version} with version "rollback"
                # (a 404), so the true Allow of this path lists GET, which the document files
                # under the other path.
                "include-operation-id": "rollback_model",
                "checks": {"allow_header_conformance": {"enabled": False}},
            },
        ],
    }
)
schema = schemathesis.openapi.from_path(COMMITTED, config=CONFIG)


@pytest.fixture
def known_customer(scored_target: Target) -> str:
    """A customer with orders, browsing and attributes, stored again before each operation
    (an earlier operation may have erased it) and applied to the portrait."""
    now = datetime.now(UTC)
    events = [
        event(
            event_id="fuzz-o1",
            customer_id=KNOWN_CUSTOMER,
            occurred_at=iso(now - timedelta(days=120)),
        ),
        event(
            event_id="fuzz-o2",
            customer_id=KNOWN_CUSTOMER,
            occurred_at=iso(now - timedelta(days=30)),
            amount="42.50",
        ),
        event(
            event_id="fuzz-v1",
            customer_id=KNOWN_CUSTOMER,
            type="view",
            amount=None,
            occurred_at=iso(now - timedelta(days=2)),
        ),
    ]
    with httpx.Client(base_url=scored_target.base_url, headers=scored_target.headers) as client:
        stored = client.post("/v1/events", json={"events": events})
        assert stored.status_code == 200, stored.text
        attributes = {"source": "crm", "attributes": {"region": "north", "age_band": "25-34"}}
        patched = client.patch(f"/v1/customers/{KNOWN_CUSTOMER}", json=attributes)
        assert patched.status_code == 200, patched.text
    drain(scored_target.session_factory)
    return KNOWN_CUSTOMER


@schema.parametrize()
# The customer is stored once per operation, not per example, on purpose: state carries over
# from one example to the next, as on a real server.
@hypothesis.settings(suppress_health_check=[hypothesis.HealthCheck.function_scoped_fixture])
def test_every_response_conforms_to_the_committed_document(
    case: Case, scored_target: Target, known_customer: str
) -> None:
    case.call_and_validate(base_url=scored_target.base_url, headers=scored_target.headers)
