"""Numbers within their documented bounds never overflow the portrait, and an event that cannot
be applied is set aside as a dead letter instead of stalling every customer's portrait.

The defects these reproduce (issue 15): 110 purchases of 200 items x 100,000 units for one
customer and day overflowed PostgreSQL's 32-bit ``units`` and stalled the worker for good;
amounts of 99,999,999,999,999.9999 overflowed ``bigint`` (PostgreSQL) or wrapped around to a
negative spend (the batch's own sum, in int64).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select, update
from sqlalchemy.exc import DataError, IntegrityError
from typer.testing import CliRunner

from service.cli import app as cli
from service.config import Settings
from service.db.session import make_session_factory
from service.events.models import DeadLetter, Event, PendingEvent
from service.events.worker import overflow, process_pending
from service.main import create_app
from service.ml.activity import (
    DAY_COUNTERS,
    ITEM_COLUMNS,
    MAX_COUNTER,
    CounterOverflowError,
    aggregate_frames,
)
from service.ml.features import behaviour_features
from service.portrait.models import CustomerDay
from service.schemas import MAX_AMOUNT
from tests.conftest import KeyFactory, bearer
from tests.factories import BASE_TIME, batch, event

LARGEST_ITEMS = [
    {"sku": f"sku-{i}", "quantity": 100_000, "price": str(MAX_AMOUNT)} for i in range(1000)
]


def _send(client: TestClient, headers: dict[str, str], events: list[dict[str, Any]]) -> Any:
    for start in range(0, len(events), 1000):
        response = client.post(
            "/v1/events", json=batch(*events[start : start + 1000]), headers=headers
        )
        assert response.status_code == 200, response.text
    return response.json()


def _features(client: TestClient, headers: dict[str, str], customer: str) -> dict[str, float]:
    response = client.get(
        f"/v1/customers/{customer}/features",
        params={"as_of": "2026-02-01T00:00:00Z"},
        headers=headers,
    )
    assert response.status_code == 200, response.text
    features: dict[str, float] = response.json()["features"]
    return features


def _exactly(value: float, expected: Decimal | int) -> bool:
    """The float nearest the exact sum (the features are floats; a wrap-around is not near)."""
    return math.isclose(value, float(expected), rel_tol=4e-16)


@pytest.fixture
def headers(make_key: KeyFactory) -> dict[str, str]:
    return bearer(make_key("ingest", "read", "admin"))


@pytest.mark.parametrize(
    ("field", "value"),
    [("amount", "1000000000.0001"), ("amount", "99999999999999.9999"), ("price", "1000000001")],
)
def test_amounts_and_prices_past_the_documented_maximum_are_rejected_with_a_reason(
    client: TestClient, headers: dict[str, str], field: str, value: str
) -> None:
    body = (
        event(amount=value)
        if field == "amount"
        else event(items=[{"sku": "a", "quantity": 1, "price": value}])
    )
    result = _send(client, headers, [body])
    assert result["rejected"] == 1
    assert "less than or equal to 1000000000" in result["rejections"][0]["reason"]


def test_the_largest_accepted_values_in_every_combination_add_up_exactly(
    client: TestClient, headers: dict[str, str], apply_pending: Callable[[], int]
) -> None:
    """The issue's reproduction (110 purchases of 200 items x 100,000 units, one customer and
    moment: 2.2 billion units, past a 32-bit column) and the largest accepted amount, price,
    item count and quantity together, several to a day and over several days, for one customer
    and beside an ordinary one: all applied, read back as the exact sums."""
    heavy = [
        event(customer_id="units", amount="1", items=[{"sku": "x", "quantity": 100_000}] * 200)
        for _ in range(110)
    ]
    largest = [
        event(
            customer_id="largest",
            occurred_at=BASE_TIME + timedelta(days=day),
            amount=str(MAX_AMOUNT),
            items=LARGEST_ITEMS,
        )
        for day in range(3)
        for _ in range(4)
    ]
    refunds = [
        event(customer_id="largest", type="refund", amount=str(MAX_AMOUNT)) for _ in range(3)
    ]
    _send(client, headers, [*heavy, *largest, *refunds, event(customer_id="ordinary")])
    assert apply_pending() == 110 + 12 + 3 + 1

    units = _features(client, headers, "units")
    assert units["units_total"] == 110 * 200 * 100_000
    assert (units["spend_total"], units["orders_total"]) == (110, 110)
    top = _features(client, headers, "largest")
    assert _exactly(top["spend_total"], 12 * MAX_AMOUNT)
    assert _exactly(top["refunded_total"], 3 * MAX_AMOUNT)
    assert top["units_total"] == 12 * 1000 * 100_000
    assert top["average_order_value"] == float(MAX_AMOUNT)
    assert _features(client, headers, "ordinary")["spend_total"] == 10.0
    summary = client.get("/v1/customers/largest", headers=headers).json()
    assert Decimal(summary["activity"]["revenue"]) == 12 * MAX_AMOUNT


def _near_the_largest(db: Engine, customer: str, room: int) -> None:
    """The customer's stored spend on BASE_TIME's day, ``room`` units short of the largest a
    counter holds: what about a million largest purchases would have left."""
    with db.begin() as connection:
        connection.execute(
            update(CustomerDay)
            .where(CustomerDay.customer_id == customer, CustomerDay.day == BASE_TIME.date())
            .values(spend_units=MAX_COUNTER - room)
        )


def test_an_event_that_would_overflow_a_sum_is_set_aside_and_the_rest_apply_in_the_same_turn(
    client: TestClient, headers: dict[str, str], db: Engine, apply_pending: Callable[[], int]
) -> None:
    _send(client, headers, [event(customer_id="whale", amount="1")])
    apply_pending()
    _near_the_largest(db, "whale", room=10_000 * 5)  # five more units of money fit
    good = [event(customer_id=f"c-{i % 100}", amount="2.50") for i in range(2_000)]
    poison = event(customer_id="whale", amount="6")
    fits = event(customer_id="whale", amount="4")
    _send(client, headers, [*good[:1000], poison, *good[1000:], fits])

    assert process_pending(make_session_factory(db), limit=20_000) == 2_002  # one turn
    with db.connect() as connection:
        assert connection.scalar(select(func.count()).select_from(PendingEvent)) == 0
        letters = connection.execute(select(DeadLetter.seq, DeadLetter.error)).all()
        stored = connection.scalar(
            select(CustomerDay.spend_units).where(CustomerDay.customer_id == "whale")
        )
    assert len(letters) == 1
    assert re.search(
        r"customer_days\.spend_units of its customer past 9,223,372,036,854,775,807", letters[0][1]
    )
    assert stored == MAX_COUNTER - 10_000  # the 4 applied, the 6 did not
    orders = sum(_features(client, headers, f"c-{i}")["orders_total"] for i in range(100))
    assert orders == 2_000

    listed = client.get("/v1/dead-letters", headers=headers).json()
    assert (listed["total"], listed["next_after"]) == (1, None)
    (letter,) = listed["dead_letters"]
    assert (letter["event_id"], letter["customer_id"]) == (poison["event_id"], "whale")
    assert client.get("/readyz").json()["dead_letters"] == 1
    metrics = client.get("/metrics").text
    assert re.search(r"^clv_dead_letters 1\.0$", metrics, re.MULTILINE)
    assert re.search(r"^clv_pending_events 0\.0$", metrics, re.MULTILINE)


def test_dead_letters_are_retried_or_dropped_by_an_admin(
    client: TestClient,
    headers: dict[str, str],
    db: Engine,
    make_key: KeyFactory,
    apply_pending: Callable[[], int],
) -> None:
    _send(client, headers, [event(customer_id="whale", amount="1")])
    apply_pending()
    _near_the_largest(db, "whale", room=0)
    first, second = event(customer_id="whale"), event(customer_id="whale")
    _send(client, headers, [first, second])
    apply_pending()
    seqs = [
        letter["seq"]
        for letter in client.get("/v1/dead-letters", headers=headers).json()["dead_letters"]
    ]
    assert len(seqs) == 2

    reader = bearer(make_key("read", "ingest"))
    assert client.get("/v1/dead-letters", headers=reader).status_code == 403
    refused = client.post("/v1/dead-letters/retry", json={}, headers=headers)
    assert refused.status_code == 422
    assert "seqs: Field required" in refused.json()["message"]

    _near_the_largest(db, "whale", room=10**9)  # the cause fixed: room for both
    retried = client.post("/v1/dead-letters/retry", json={"seqs": seqs[:1]}, headers=headers)
    assert retried.json() == {"seqs": seqs[:1]}
    assert apply_pending() == 1
    dropped = client.post("/v1/dead-letters/drop", json={"all": True}, headers=headers)
    assert dropped.json() == {"seqs": seqs[1:]}
    assert client.get("/v1/dead-letters", headers=headers).json()["total"] == 0
    summary = client.get("/v1/customers/whale", headers=headers).json()
    assert (
        summary["activity"]["events"] == 2
    )  # the first purchase and the retried one; the dropped is gone
    resent = client.post("/v1/events", json=batch(first, second), headers=headers).json()
    assert (resent["accepted"], resent["duplicates"]) == (1, 1)  # the dropped one's id is gone


def test_the_cli_lists_retries_and_drops_dead_letters(
    env: Settings,
    client: TestClient,
    headers: dict[str, str],
    db: Engine,
    apply_pending: Callable[[], int],
) -> None:
    _send(client, headers, [event(customer_id="whale", amount="1")])
    apply_pending()
    _near_the_largest(db, "whale", room=0)
    _send(
        client,
        headers,
        [event(customer_id="whale", event_id="too-much"), event(customer_id="whale")],
    )
    apply_pending()
    runner = CliRunner()
    listed = runner.invoke(cli, ["events", "dead-letters", "list"])
    assert listed.exit_code == 0, listed.output
    assert "too-much" in listed.output
    assert "2 dead letters" in listed.output
    assert runner.invoke(cli, ["events", "dead-letters", "retry"]).exit_code == 1
    assert (
        "queued again: 2" in runner.invoke(cli, ["events", "dead-letters", "retry", "--all"]).output
    )
    apply_pending()  # still too much: set aside again
    dropped = runner.invoke(cli, ["events", "dead-letters", "drop", "--all"])
    assert "dropped: 2" in dropped.output


def test_a_batch_whose_own_sum_passes_the_largest_counter_is_refused_not_wrapped() -> None:
    """What wrapped around to a negative spend: ten amounts of ~10**18 units summed in int64."""
    events = pd.DataFrame(
        {
            "seq": range(10),
            "customer_id": "c",
            "type": "purchase",
            "seconds": 0,
            "amount_units": np.full(10, 999_999_999_999_999_999, dtype=np.int64),
        }
    )
    with pytest.raises(CounterOverflowError):
        aggregate_frames(events, pd.DataFrame(columns=ITEM_COLUMNS))


def test_a_customers_sum_over_days_past_64_bits_stays_positive() -> None:
    days = pd.DataFrame({"customer_id": "c", "day": [1, 2, 3], **dict.fromkeys(DAY_COUNTERS, 1)})
    days["spend_units"] = MAX_COUNTER
    features = behaviour_features(days, as_of_day=3)
    assert _exactly(features.loc["c", "spend_total"], Decimal(3 * MAX_COUNTER).scaleb(-4))


def test_ingestion_past_the_queue_limit_is_refused_with_retry_after_and_stores_nothing(
    settings: Settings, make_key: KeyFactory, db: Engine
) -> None:
    """Backpressure: with the worker 3 events behind and a limit of 2, the next batch is a 503
    that says why and stores nothing; once the worker caught up, the same batch is taken."""
    limited = settings.model_copy(update={"max_pending_events": 2})
    headers = bearer(make_key("ingest"))
    with TestClient(create_app(limited)) as client:
        client.app.state.backpressure.refresh_seconds = 0.0  # count on every request
        assert _send(client, headers, [event() for _ in range(3)])["accepted"] == 3
        later = batch(event(event_id="later"))
        refused = client.post("/v1/events", json=later, headers=headers)
        assert refused.status_code == 503
        assert refused.headers["Retry-After"] == "5"
        assert refused.json()["code"] == "overloaded"
        assert "over 2 stored events wait for the worker" in refused.json()["message"]
        with db.connect() as connection:
            assert connection.scalar(select(func.count()).select_from(Event)) == 3
        process_pending(make_session_factory(db), limit=100)
        assert client.post("/v1/events", json=later, headers=headers).json()["accepted"] == 1


def _integrity(message: str) -> IntegrityError:
    return IntegrityError("", {}, Exception(message))


@pytest.mark.parametrize(
    ("error", "counter"),
    [
        (_integrity("NOT NULL constraint failed: customer_days.units"), "customer_days.units"),
        (_integrity("NOT NULL constraint failed: events.customer_id"), None),
        (_integrity("UNIQUE constraint failed: events.event_id"), None),
        (DataError("", {}, Exception("invalid input syntax")), None),
        (CounterOverflowError("x"), "a batch's sum"),
    ],
)
def test_only_an_overflowing_sum_sets_events_aside(error: Exception, counter: str | None) -> None:
    """Any other failure (a bug, a schema that drifted) fails the worker's turn, to be retried,
    instead of setting every event aside one by one."""
    assert overflow(error) == counter
