"""Schemathesis against the committed OpenAPI document (openapi/openapi.json, what clients
generate their code from, not the app's live one): every operation, over real HTTP, with an admin
key, against a served shop with a champion (PostgreSQL by default: see conftest.py).

For each operation it sends the document's examples, boundary and invalid values (the coverage
phase) and ``CLV_TEST_FUZZ_EXAMPLES`` generated requests, valid and invalid (default 25; raise it
for a deeper local run, and change ``CLV_TEST_FUZZ_SEED`` to explore elsewhere: the fixed seed
makes a CI rerun send the same requests). Every check schemathesis has runs (``--checks all``):
each answer must

- not be a 5xx;
- have a status the document lists for the operation (or be a 405 with a correct ``Allow`` for a
  method it does not list), and the documented content type, body schema and headers;
- be a 401 when sent without credentials, for every operation that declares the bearer scheme;
- be a 4xx for a request the document says is invalid (``negative_data_rejection``), and not a
  4xx other than 401/403/404/409/429 for one it says is valid (``positive_data_acceptance``).

The two request-validation checks are relaxed, per operation, only where the API departs from
what a static schema can say, on purpose and documented:

- ``POST /v1/events`` takes a batch whose events are invalid: it answers 200 and lists each in
  ``rejections`` (one bad event must not cost a storefront the other 999), so invalid events are
  not a 4xx there (``negative_data_rejection`` is off for that operation only; that a body that
  is not a batch at all is 422 is tested in tests/events/test_ingest.py);
- ``VALUE_RULES``: a request the schema allows can be refused 422 by a rule that depends on the
  clock, the stored data or the champion (``as_of`` in the future, or outside what the champion
  serves); there 422 counts as an answer to valid data, and any other 4xx still fails.

Those rules have their own tests. No operation is excluded: training requests are only queued (no
worker runs in these tests), erasure erases.
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

from service.events.worker import drain
from tests.factories import event, iso
from tests.fuzz.conftest import Target

COMMITTED = Path(__file__).resolve().parents[2] / "openapi" / "openapi.json"
EXAMPLES = int(os.environ.get("CLV_TEST_FUZZ_EXAMPLES", "25"))
SEED = int(os.environ.get("CLV_TEST_FUZZ_SEED", "20261128"))
KNOWN_CUSTOMER = "0"
"""Hypothesis's simplest string for an id, so generated paths often name a customer that exists."""

VALUE_RULES = {
    "get_customer_clv": "as_of outside what the champion serves, or a horizon beyond its own",
    "score_batch": "as_of outside what the champion serves, or a horizon beyond its own",
    "get_customer_features": "as_of in the future",
    "train_model": "as_of in the future, or an architecture that is not registered",
    "run_learning": "as_of in the future, or too early for a fair holdout",
    "check_drift": "as_of before the end of the champion's training data",
    "create_fairness_report": "a horizon after as_of that runs past the stored events",
    "create_btyd_report": "as_of in the future",
    "create_audience": "a range with neither end, or with its min above its max",
    "preview_audience": "a range with neither end, or with its min above its max",
}
"""Operations where schema-valid data may be refused 422 by a rule on its value (the clock, the
stored data, the champion) or across fields, which the schema cannot state; and why."""
_VALID_DATA_STATUSES = ["2xx", "3xx", "401", "403", "404", "409", "429", "5xx"]
"""schemathesis's defaults for ``positive_data_acceptance`` (a 5xx fails ``not_a_server_error``)."""

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
        "checks": {"enabled": True},
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
            {
                # Invalid events are answered 200, each in `rejections` (see above).
                "include-operation-id": "ingest_events",
                "checks": {"negative_data_rejection": {"enabled": False}},
            },
            *(
                {
                    "include-operation-id": operation,
                    "checks": {
                        "positive_data_acceptance": {
                            "expected-statuses": [*_VALID_DATA_STATUSES, "422"]
                        }
                    },
                }
                for operation in VALUE_RULES
            ),
        ],
    }
)
schema = schemathesis.openapi.from_path(COMMITTED, config=CONFIG)


@schema.auth(refresh_interval=None)
class AdminKey:
    """The served shop's admin key on every generated request (``known_customer`` sets it).
    As an auth provider, not a header added to each call: schemathesis then leaves the key out
    of the requests that test a missing key, and does not take a request whose only invalid part
    was the key it meant to leave out (sent anyway) for invalid data the server accepted."""

    token = ""

    def get(self, case: Case, context: schemathesis.AuthContext) -> str | None:
        return AdminKey.token or None

    def set(self, case: Case, data: str, context: schemathesis.AuthContext) -> None:
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}


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
    AdminKey.token = scored_target.token
    return KNOWN_CUSTOMER


@schema.parametrize()
# The customer is stored once per operation, not per example, on purpose: state carries over
# from one example to the next, as on a real server.
@hypothesis.settings(suppress_health_check=[hypothesis.HealthCheck.function_scoped_fixture])
def test_every_response_conforms_to_the_committed_document(
    case: Case, scored_target: Target, known_customer: str
) -> None:
    case.call_and_validate(base_url=scored_target.base_url)
