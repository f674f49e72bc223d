"""Customers less their latest orders (``service.ml.prefixes``): each prefix's aggregates and
events are exactly those of the log without those orders, only the window's orders and never a
first one are taken away, and one order more shifts every prefix by one, which is what makes the
score floor hold."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

from service.ml.activity import EVENT_COLUMNS, ITEM_COLUMNS, Activity, aggregate_frames
from service.ml.prefixes import FLOOR_ORDERS, FLOOR_WINDOW_SECONDS, Orders, Prefixes, prefixes
from service.ml.sequences import event_sequences, first_item_categories

DAY = 86_400
CATEGORIES = ["shoes", "hats"]


def _log(seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Five customers' purchases over two days (some in the same second), refunds written as
    negative purchases, views and cart additions, with items."""
    rng = np.random.default_rng(seed)
    rows, items = [], []
    for seq in range(300):
        customer = f"c{rng.integers(5)}"
        kind = rng.choice(["purchase", "purchase", "view", "add_to_cart", "refund"])
        seconds = int(rng.integers(0, 48)) * 3600 + int(rng.integers(0, 3))
        amount = int(rng.integers(1, 500)) * 100 if kind in ("purchase", "refund") else 0
        if kind == "refund" and rng.random() < 0.5:
            kind, amount = "purchase", -amount  # a refund as some exports write it
        rows.append((seq, customer, kind, seconds, amount))
        for line in range(int(rng.integers(0, 3))):
            sku = f"s{rng.integers(6)}"
            category = CATEGORIES[int(rng.integers(2))]
            items.append((seq, customer, kind, seconds, sku, sku.upper(), category, line + 1))
    return pd.DataFrame(rows, columns=EVENT_COLUMNS), pd.DataFrame(items, columns=ITEM_COLUMNS)


def _sorted(activity: Activity) -> dict[str, pd.DataFrame]:
    days = activity.days.sort_values(["customer_id", "day"]).reset_index(drop=True)
    products = activity.products.sort_values(["customer_id", "sku"]).reset_index(drop=True)
    return {"days": days, "products": products}


def _of(cut: Prefixes, prefix: str) -> Activity:
    days = cut.activity.days[cut.activity.days["customer_id"] == prefix]
    products = cut.activity.products[cut.activity.products["customer_id"] == prefix]
    return Activity(days, products, cut.activity.catalogue)


def _sequences(events: pd.DataFrame, items: pd.DataFrame, index: pd.Index) -> np.ndarray:
    end = int(events["seconds"].max())
    return event_sequences(events, first_item_categories(items), index, end, 8, CATEGORIES)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_each_prefix_is_the_log_without_the_customers_last_orders(seed: int) -> None:
    events, items = _log(seed)
    moment = int(events["seconds"].max())
    orders = Orders.latest(events, items, moment)
    cut = prefixes(aggregate_frames(events, items), events, orders)

    in_window = orders.events[orders.events["seconds"] > moment - FLOOR_WINDOW_SECONDS]
    assert len(in_window) == len(orders.events) > 0
    for customer, theirs in orders.events.groupby("customer_id"):
        ever = events[(events["customer_id"] == customer) & (events["type"] == "purchase")]
        count = (cut.customers == customer).sum()
        # the window's orders but never the first, up to the limit
        assert count == min(len(theirs), (ever["amount_units"] >= 0).sum() - 1, FLOOR_ORDERS)
        for k in range(1, count + 1):
            gone = theirs[theirs["back"] <= k]
            kept = events[(events["customer_id"] == customer) & ~events["seq"].isin(gone["seq"])]
            kept_items = items[items["seq"].isin(kept["seq"])]
            prefix = f"{customer}\x1f{k}"
            expected = _sorted(aggregate_frames(kept, kept_items))
            got = _sorted(_of(cut, prefix))
            for name in ("days", "products"):
                got[name]["customer_id"] = customer
                assert_frame_equal(got[name], expected[name], check_dtype=False, obj=name)
            assert cut.customers[prefix] == customer
            window = cut.events[cut.events["customer_id"] == prefix].assign(customer_id=customer)
            index = pd.Index([customer])
            np.testing.assert_array_equal(
                _sequences(window, items, index), _sequences(kept, items, index)
            )


def test_one_order_more_shifts_every_prefix_by_one() -> None:
    """Prefix k + 1 of the customers with one more order, later than all others, is prefix k
    of the customers without it (k = 0: the customer as they were)."""
    events, items = _log(3)
    customers = sorted(events["customer_id"].unique())
    end = int(events["seconds"].max()) + 1
    added = pd.DataFrame(
        [(1000 + i, c, "purchase", end, 4200) for i, c in enumerate(customers)],
        columns=EVENT_COLUMNS,
    )
    more = pd.concat([events, added], ignore_index=True)
    orders, more_orders = Orders.latest(events, items, end), Orders.latest(more, items, end)
    without = prefixes(aggregate_frames(events, items), events, orders)
    with_order = prefixes(aggregate_frames(more, items), more, more_orders)

    for customer in customers:
        theirs = events["customer_id"] == customer
        was = _sorted(aggregate_frames(events[theirs], items[items["customer_id"] == customer]))
        for k in range(FLOOR_ORDERS):
            before = f"{customer}\x1f{k}"
            if k and before not in without.customers.index:
                assert f"{customer}\x1f{k + 1}" not in with_order.customers.index
                break
            after = _sorted(_of(with_order, f"{customer}\x1f{k + 1}"))
            expected = _sorted(_of(without, before)) if k else was
            for name in ("days", "products"):
                assert_frame_equal(
                    after[name].assign(customer_id=customer),
                    expected[name].assign(customer_id=customer),
                    check_dtype=False,
                )


def test_only_the_windows_latest_orders_up_to_the_limit_are_taken_away() -> None:
    count, moment = FLOOR_ORDERS + 5, 10 * DAY
    rows = [(seq, "c", "purchase", moment - 1000 * seq, 1000) for seq in range(count)]
    rows += [
        (count, "old", "purchase", moment - FLOOR_WINDOW_SECONDS, 1000),  # just outside
        (count + 1, "old", "purchase", moment - FLOOR_WINDOW_SECONDS + 1, 1000),
        (count + 2, "old", "purchase", moment, 1000),
        (count + 3, "one", "purchase", moment, 1000),
        (count + 4, "refund", "purchase", moment, -500),
        (count + 5, "later", "purchase", moment + 1, 1000),
        (count + 6, "later", "purchase", moment, 1000),
    ]
    events = pd.DataFrame(rows, columns=EVENT_COLUMNS)

    orders = Orders.latest(events, pd.DataFrame(columns=ITEM_COLUMNS), moment)
    past = events[events["seconds"] <= moment]  # as scoring reads them
    cut = prefixes(aggregate_frames(past, orders.items), past, orders)

    by_customer = orders.events.groupby("customer_id")["seq"].apply(list).to_dict()
    assert by_customer == {
        "c": list(range(FLOOR_ORDERS - 1, -1, -1)),  # the latest, oldest first
        "old": [count + 1, count + 2],
        "one": [count + 3],
        "later": [count + 6],
    }
    # a first order stays: "one" and "later" (by the moment) have no prefix; "old" has both
    assert cut.customers.value_counts().to_dict() == {"c": FLOOR_ORDERS, "old": 2}
