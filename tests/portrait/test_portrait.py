"""The portrait through the API: kept current batch by batch, exact against a batch recompute,
point-in-time correct, and rebuilt from the events on demand."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from pandas.testing import assert_frame_equal
from sqlalchemy import Engine
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from service.cli import app
from service.config import Settings
from service.db.session import make_session_factory
from service.ml.activity import Activity, EventRecord, aggregate
from service.ml.examples import EventLog
from service.ml.prefixes import Orders, prefixes
from service.ml.sequences import event_sequences, first_item_categories
from service.portrait import repository
from service.portrait.service import features_of, latest_orders, scoring_inputs
from service.simulator.config import ShopConfig
from service.simulator.files import write_shop
from tests.conftest import KeyFactory, bearer
from tests.factories import batch, event, iso


@pytest.fixture
def headers(make_key: KeyFactory) -> dict[str, str]:
    return bearer(make_key("ingest", "read"))


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("shop")
    write_shop(ShopConfig(customers=250, days=365, horizon_days=30, seed=11), folder)
    return folder


def shop_events(shop: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (shop / "events.jsonl").open()]


def as_record(raw: dict[str, Any]) -> EventRecord:
    amount = raw.get("amount")
    return EventRecord(
        raw["customer_id"],
        raw["type"],
        datetime.fromisoformat(raw["occurred_at"]),
        Decimal(amount) if amount is not None else None,
        raw.get("items"),
    )


def stored_activity(db: Engine) -> Activity:
    with make_session_factory(db)() as session:
        return repository.load_activity(session)


def normalised(activity: Activity) -> dict[str, pd.DataFrame]:
    """The aggregates in a canonical order and dtype, to compare store and recompute."""
    days = activity.days.astype({"day": int}).sort_values(["customer_id", "day"])
    products = activity.products.sort_values(["customer_id", "sku"])
    catalogue = activity.catalogue[["sku", "name", "category"]].sort_values("sku").astype(object)
    return {
        "days": days.reset_index(drop=True),
        "products": products.reset_index(drop=True),
        "catalogue": catalogue.reset_index(drop=True),
    }


def test_streaming_a_shop_in_shuffled_batches_equals_recomputing_from_scratch(
    client: TestClient,
    headers: dict[str, str],
    db: Engine,
    shop: Path,
    apply_pending: Callable[[], int],
) -> None:
    events = shop_events(shop)
    rng = random.Random(5)
    shuffled = rng.sample(events, len(events))  # late and out-of-order arrivals everywhere
    shuffled += rng.sample(events, len(events) // 20)  # and some resent batches
    position = 0
    while position < len(shuffled):
        size = rng.randint(50, 700)
        response = client.post(
            "/v1/events", json=batch(*shuffled[position : position + size]), headers=headers
        )
        assert response.status_code == 200
        assert response.json()["rejected"] == 0
        position += size
        if rng.random() < 0.3:  # the worker runs between some batches, not others
            apply_pending()
    apply_pending()

    stored = stored_activity(db)
    recomputed = aggregate(as_record(raw) for raw in events)
    for name, frame in normalised(stored).items():
        assert_frame_equal(frame, normalised(recomputed)[name], check_dtype=False, obj=name)
    now = datetime.now(UTC)
    from_store = features_of(stored, now).drop(columns="segment")
    from_scratch = features_of(recomputed, now).drop(columns="segment")
    assert_frame_equal(from_store, from_scratch, check_exact=False, rtol=1e-12, atol=1e-12)


def test_features_as_of_a_time_ignore_everything_after_it(
    client: TestClient, headers: dict[str, str], apply_pending: Callable[[], int]
) -> None:
    t = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    early = [
        event(customer_id="c", occurred_at=t - timedelta(days=d), amount="10") for d in (40, 9, 0)
    ]
    client.post("/v1/events", json=batch(*early), headers=headers)
    url = f"/v1/customers/c/features?as_of={iso(t)}"
    before = client.get(url, headers=headers).json()

    later = [
        event(customer_id="c", occurred_at=t + timedelta(seconds=1), amount="99"),
        event(customer_id="c", occurred_at=t + timedelta(days=3), amount="5"),
        event(customer_id="c", type="view", occurred_at=t + timedelta(days=2), amount=None),
    ]
    client.post("/v1/events", json=batch(*later), headers=headers)
    after = client.get(url, headers=headers).json()

    assert before == after
    assert before["features"]["orders_total"] == 3  # the order exactly at t counts
    assert before["features"]["days_since_last_order"] == 0
    assert before["segment"] == "loyal"  # R = 5 (0 days), F = 3 (3 orders)
    apply_pending()
    now = client.get("/v1/customers/c/features", headers=headers).json()
    assert now["features"]["orders_total"] == 5


def test_current_features_equal_those_as_of_the_same_moment(
    client: TestClient, headers: dict[str, str], shop: Path, apply_pending: Callable[[], int]
) -> None:
    events = [e for e in shop_events(shop) if e["customer_id"] in ("C0000003", "C0000007")]
    client.post("/v1/events", json=batch(*events), headers=headers)
    assert apply_pending() == len(events)
    for customer in ("C0000003", "C0000007"):
        current = client.get(f"/v1/customers/{customer}/features", headers=headers).json()
        moment = current["as_of"]
        raw = client.get(
            f"/v1/customers/{customer}/features", params={"as_of": moment}, headers=headers
        ).json()
        assert current == raw
        profile = client.get(f"/v1/customers/{customer}", headers=headers).json()
        assert profile["features"] == pytest.approx(current["features"])
        assert profile["segment"] == current["segment"]
        assert profile["activity"]["frequency"] == current["features"]["frequency"]


def test_scoring_inputs_read_from_the_store_equal_those_from_every_raw_event(
    client: TestClient,
    headers: dict[str, str],
    db: Engine,
    shop: Path,
    apply_pending: Callable[[], int],
) -> None:
    """What scoring reads (stored aggregates less the applied events after the moment, plus the
    queued ones before it, and each customer's last events) against aggregating and encoding
    every raw event at or before the moment, at moments inside the history."""
    events = shop_events(shop)
    customers = sorted({e["customer_id"] for e in events})[:60]
    mine = [e for e in events if e["customer_id"] in customers]
    random.Random(2).shuffle(mine)  # each customer has events applied and queued
    cut = len(mine) * 4 // 5
    client.post("/v1/events", json=batch(*mine[:cut]), headers=headers)
    apply_pending()
    client.post("/v1/events", json=batch(*mine[cut:]), headers=headers)  # stays queued
    moment = datetime.fromisoformat(mine[cut]["occurred_at"])
    ties = [  # one second, its events in an order other than their seq
        event(customer_id=customers[0], occurred_at=moment + timedelta(microseconds=900_000)),
        event(customer_id=customers[0], occurred_at=moment + timedelta(microseconds=100_000)),
    ]
    client.post("/v1/events", json=batch(*ties), headers=headers)
    times = sorted(datetime.fromisoformat(e["occurred_at"]) for e in mine)
    moments = [times[len(times) // 3] + timedelta(hours=5), moment, times[-1], datetime.now(UTC)]
    orders = sorted(
        datetime.fromisoformat(e["occurred_at"]) for e in mine if e["type"] == "purchase"
    )
    moments += [orders[len(orders) // 2] + timedelta(minutes=1), orders[-1]]  # orders in the day

    prefixes_seen = 0
    with make_session_factory(db)() as session:
        categories = sorted(set(repository.load_activity(session).catalogue["category"]))
        for at in moments:
            activity, recent = scoring_inputs(session, customers, at, 8)
            everything = EventLog.from_frames(
                list(repository.event_frames(session, until=at, customer_ids=customers))
            )
            expected = normalised(everything.activity())
            for name in ("days", "products"):
                got = normalised(activity)[name]
                assert_frame_equal(got, expected[name], check_dtype=False, obj=f"{name} at {at}")
            index = pd.Index(expected["days"]["customer_id"].unique())
            seconds = int(at.timestamp())
            from_store = event_sequences(
                recent.events, recent.first_categories, index, seconds, 8, categories
            )
            from_log = event_sequences(
                everything.events, first_item_categories(everything.items), index, seconds, 8,
                categories,
            )  # fmt: skip
            np.testing.assert_array_equal(from_store, from_log, err_msg=f"sequences at {at}")
            prefixes_seen += _assert_same_prefixes(session, customers, at, everything, categories)
    assert prefixes_seen  # some customer had orders in the day before some moment


def _assert_same_prefixes(
    session: Session,
    customers: list[str],
    at: datetime,
    everything: EventLog,
    categories: list[str],
) -> int:
    """The customers less their latest orders (``service.ml.prefixes``), from what scoring reads
    for a model that floors (the window's orders, as many more events) and from every raw event:
    the same pseudo-customers, aggregates and sequences; how many."""
    length, read = 8, latest_orders(session, customers, at)
    activity, recent = scoring_inputs(session, customers, at, length + read.most)
    stored = prefixes(activity, recent.events, read)
    orders = Orders.latest(everything.events, everything.items, int(at.timestamp()))
    logged = prefixes(everything.activity(), everything.events, orders)
    pd.testing.assert_series_equal(stored.customers.sort_index(), logged.customers.sort_index())
    for name in ("days", "products"):
        got, expected = normalised(stored.activity)[name], normalised(logged.activity)[name]
        assert_frame_equal(got, expected, check_dtype=False, obj=f"prefix {name} at {at}")
    index, seconds = pd.Index(sorted(logged.customers.index)), int(at.timestamp())
    from_store = event_sequences(stored.events, recent.first_categories, index, seconds, length,
                                 categories)  # fmt: skip
    from_log = event_sequences(logged.events, first_item_categories(everything.items), index,
                               seconds, length, categories)  # fmt: skip
    np.testing.assert_array_equal(from_store, from_log, err_msg=f"prefix sequences at {at}")
    return len(logged.customers)


def test_feature_errors_and_the_feature_catalogue(
    client: TestClient, headers: dict[str, str]
) -> None:
    future = iso(datetime.now(UTC) + timedelta(days=1))
    client.post("/v1/events", json=batch(event(customer_id="c")), headers=headers)

    assert client.get("/v1/customers/nobody/features", headers=headers).status_code == 404
    naive = client.get("/v1/customers/c/features?as_of=2026-01-01T00:00:00", headers=headers)
    assert naive.status_code == 422
    ahead = client.get(f"/v1/customers/c/features?as_of={future}", headers=headers)
    assert ahead.status_code == 422
    assert "in the future" in ahead.json()["message"]
    early = client.get("/v1/customers/c/features?as_of=2000-01-01T00:00:00Z", headers=headers)
    assert early.status_code == 404
    catalogue = client.get("/v1/features", headers=headers).json()
    names = {feature["name"] for feature in catalogue["features"]}
    assert {"frequency", "recency_days", "age_days", "monetary_value", "orders_30d"} <= names
    assert all(feature["unit"] and feature["description"] for feature in catalogue["features"])
    assert "champions" in catalogue["segments"]


def test_rebuild_recomputes_the_same_aggregates(
    client: TestClient,
    headers: dict[str, str],
    db: Engine,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    shop: Path,
    apply_pending: Callable[[], int],
) -> None:
    events = [e for e in shop_events(shop) if e["customer_id"] < "C0000040"]
    client.post("/v1/events", json=batch(*events), headers=headers)
    apply_pending()
    before = normalised(stored_activity(db))
    monkeypatch.setenv("CLV_DATABASE_URL", settings.database_url)

    result = CliRunner().invoke(app, ["portrait", "rebuild"])

    assert result.exit_code == 0, result.output
    assert f"rebuilt the portrait from {len(events)} events" in result.stdout
    after = normalised(stored_activity(db))
    for name in before:
        assert_frame_equal(after[name], before[name], check_dtype=False, obj=name)
    assert (
        np.isfinite(features_of(stored_activity(db), datetime.now(UTC)).drop(columns="segment"))
        .all()
        .all()
    )
