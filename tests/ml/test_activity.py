"""Activity aggregates: exact sums, order-independent, and merging equals aggregating at once."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pandas as pd
from pandas.testing import assert_frame_equal

from service.ml.activity import Activity, EventRecord, aggregate

T0 = datetime(2025, 3, 1, 10, tzinfo=UTC)


def record(
    kind: str, at: datetime, amount: str | None = None, items=None, customer="c1"
) -> EventRecord:  # type: ignore[no-untyped-def]
    return EventRecord(customer, kind, at, Decimal(amount) if amount else None, items)


EVENTS = [
    record("session_start", T0),
    record("view", T0, items=[{"sku": "A", "name": "Old name", "category": "shoes"}]),
    record("add_to_cart", T0, items=[{"sku": "A"}]),
    record("purchase", T0 + timedelta(minutes=5), "59.9900",
           [{"sku": "A", "quantity": 2, "price": "29.995"}, {"sku": "B", "category": "socks"}]),
    record("purchase", T0 + timedelta(hours=3), "0"),
    record("refund", T0 + timedelta(days=2), "10.5"),
    record("view", T0 + timedelta(days=9), items=[{"sku": "A", "name": "New name"}]),
    record("view", T0 + timedelta(days=9), customer="c2", items=[{"sku": "C"}]),
]  # fmt: skip


def test_days_count_each_kind_and_sum_money_exactly() -> None:
    days = aggregate(EVENTS).days.set_index(["customer_id", "day"])

    first = days.loc[("c1", (T0.date() - datetime(1970, 1, 1).date()).days)]
    assert first["orders"] == 2
    assert first["spend_units"] == 599_900  # 59.99 in ten-thousandths
    assert first["units"] == 3  # 2 of A + 1 of B (quantity 1 when absent)
    assert (first["views"], first["carts"], first["sessions"], first["events"]) == (1, 1, 1, 5)
    refund_day = days.loc[("c1", first.name[1] + 2)]
    assert (refund_day["refunds"], refund_day["refunded_units"]) == (1, 105_000)
    assert len(days) == 4


def test_products_and_the_latest_product_text() -> None:
    activity = aggregate(EVENTS)
    products = activity.products.set_index(["customer_id", "sku"])
    catalogue = activity.catalogue.set_index("sku")

    assert products.loc[("c1", "A")].tolist() == [2, 3]  # bought 2; viewed twice + carted once
    assert products.loc[("c1", "B")].tolist() == [1, 0]
    assert catalogue.loc["A", "name"] == "New name"  # the later event's text
    assert catalogue.loc["B", "category"] == "socks"


def test_combining_batches_equals_aggregating_everything_in_any_order() -> None:
    rng = random.Random(3)
    events = EVENTS * 3
    whole = aggregate(events)
    for _ in range(5):
        shuffled = rng.sample(events, len(events))
        cut_a, cut_b = sorted(rng.sample(range(1, len(events)), 2))
        parts = [shuffled[:cut_a], shuffled[cut_a:cut_b], shuffled[cut_b:]]
        combined = Activity.combine([aggregate(part) for part in parts])
        for name in ("days", "products", "catalogue"):
            assert_frame_equal(getattr(combined, name), getattr(whole, name), check_dtype=False)


def test_ties_in_product_text_do_not_depend_on_arrival_order() -> None:
    a = record("view", T0, items=[{"sku": "X", "name": "Alpha"}])
    b = record("view", T0, items=[{"sku": "X", "name": "Beta"}])

    one = aggregate([a, b]).catalogue
    other = Activity.combine([aggregate([b]), aggregate([a])]).catalogue

    assert one["name"].tolist() == other["name"].tolist() == ["Beta"]


def test_no_events_make_empty_aggregates() -> None:
    empty = aggregate([])
    assert empty.days.empty
    assert empty.products.empty
    assert empty.catalogue.empty
    assert isinstance(Activity.combine([]).days, pd.DataFrame)
