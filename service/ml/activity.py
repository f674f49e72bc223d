"""Customer activity aggregates: the incremental state behind the customer portrait.

Events are summed per customer and UTC day (``days``) and per customer and product
(``products``); product texts are kept apart (``catalogue``). Aggregation is a commutative monoid:
aggregating two batches and merging the results gives exactly what aggregating both at once gives.
That is what lets the service update the portrait batch by batch (late and out-of-order events
included) while training aggregates all history in one pass, with this one code path for both.

Money is carried as integer ten-thousandths (``*_units``), so sums are exact.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd

MONEY_UNITS = 10_000
EPOCH = date(1970, 1, 1)

DAY_COUNTERS = (
    "orders", "spend_units", "units", "refunds", "refunded_units", "views", "carts", "removes",
    "checkouts", "sessions", "events",
)  # fmt: skip
"""Per customer and day: purchases, their amount and item quantity, refunds and their amount,
product views, cart additions and removals, checkouts started, sessions, and all events."""

PRODUCT_COUNTERS = ("bought", "viewed")
"""Per customer and product: units bought, and views plus cart additions."""

_TYPE_COUNTER = {
    "purchase": "orders",
    "refund": "refunds",
    "view": "views",
    "add_to_cart": "carts",
    "remove_from_cart": "removes",
    "checkout_started": "checkouts",
    "session_start": "sessions",
}


@dataclass(frozen=True)
class EventRecord:
    """The fields of an event that the portrait uses."""

    customer_id: str
    type: str
    occurred_at: datetime
    amount: Decimal | None
    items: Sequence[Mapping[str, Any]] | None


@dataclass
class Activity:
    days: pd.DataFrame  # customer_id, day (int, days since 1970-01-01), *DAY_COUNTERS
    products: pd.DataFrame  # customer_id, sku, *PRODUCT_COUNTERS
    catalogue: pd.DataFrame  # sku, name, category, seen_at (epoch seconds, for "latest wins")

    @classmethod
    def empty(cls) -> Activity:
        return cls(
            days=pd.DataFrame(columns=["customer_id", "day", *DAY_COUNTERS]).astype(
                {"day": "int64", **dict.fromkeys(DAY_COUNTERS, "int64")}
            ),
            products=pd.DataFrame(columns=["customer_id", "sku", *PRODUCT_COUNTERS]).astype(
                dict.fromkeys(PRODUCT_COUNTERS, "int64")
            ),
            catalogue=pd.DataFrame(columns=["sku", "name", "category", "seen_at"]).astype(
                {"seen_at": "int64"}
            ),
        )

    @classmethod
    def combine(cls, parts: Sequence[Activity]) -> Activity:
        """The aggregate of all parts: counters add up, the latest product text wins."""
        if not parts:
            return cls.empty()
        days = pd.concat([part.days for part in parts])
        products = pd.concat([part.products for part in parts])
        return cls(
            days=_sum(days, ["customer_id", "day"], DAY_COUNTERS),
            products=_sum(products, ["customer_id", "sku"], PRODUCT_COUNTERS),
            catalogue=_latest(pd.concat([part.catalogue for part in parts])),
        )


def _sum(frame: pd.DataFrame, keys: list[str], counters: Iterable[str]) -> pd.DataFrame:
    counters = list(counters)
    if frame.empty:
        return frame.reset_index(drop=True)
    summed = frame.groupby(keys, sort=True, as_index=False)[counters].sum()
    return summed.astype(dict.fromkeys(counters, "int64"))


def _latest(catalogue: pd.DataFrame) -> pd.DataFrame:
    """One row per SKU: the text seen at the latest time; ties go to the greater name, so the
    result does not depend on the order in which events arrived."""
    if catalogue.empty:
        return catalogue.reset_index(drop=True)
    ordered = catalogue.assign(_name=catalogue["name"].fillna("")).sort_values(
        ["sku", "seen_at", "_name"]
    )
    latest = ordered.drop_duplicates("sku", keep="last").drop(columns="_name")
    text = latest[["name", "category"]].astype(object)
    latest[["name", "category"]] = text.where(text.notna(), None)  # one "missing", not NaN/None
    return latest.reset_index(drop=True)


def day_number(moment: datetime) -> int:
    """Days since 1970-01-01 of the UTC date of ``moment``."""
    return (moment.astimezone(UTC).date() - EPOCH).days


def aggregate(events: Iterable[EventRecord]) -> Activity:
    """The activity aggregates of ``events`` (any order)."""
    day_rows: list[tuple[str, int, str, int, int]] = []
    item_rows: list[tuple[str, str, str | None, str | None, int, int, int]] = []
    for event in events:
        seconds = int(event.occurred_at.timestamp())
        day = seconds // 86400
        amount = int(event.amount * MONEY_UNITS) if event.amount is not None else 0
        units = 0
        for item in event.items or ():
            quantity = int(item.get("quantity") or 1)
            bought = quantity if event.type == "purchase" else 0
            viewed = 1 if event.type in ("view", "add_to_cart") else 0
            units += bought
            item_rows.append(
                (event.customer_id, item["sku"], item.get("name"), item.get("category"),
                 seconds, bought, viewed)
            )  # fmt: skip
        day_rows.append((event.customer_id, day, event.type, amount, units))
    return Activity(
        days=_days(day_rows), products=_products(item_rows), catalogue=_items(item_rows)
    )


def _days(rows: list[tuple[str, int, str, int, int]]) -> pd.DataFrame:
    if not rows:
        return Activity.empty().days
    frame = pd.DataFrame(rows, columns=["customer_id", "day", "type", "amount", "units"])
    counters = pd.DataFrame(
        {"customer_id": frame["customer_id"], "day": frame["day"].astype("int64")}
    )
    for event_type, counter in _TYPE_COUNTER.items():
        counters[counter] = (frame["type"] == event_type).astype("int64")
    is_purchase = frame["type"] == "purchase"
    counters["spend_units"] = np.where(is_purchase, frame["amount"], 0)
    counters["refunded_units"] = np.where(frame["type"] == "refund", frame["amount"], 0)
    counters["units"] = np.where(is_purchase, frame["units"], 0)
    counters["events"] = 1
    return _sum(counters, ["customer_id", "day"], DAY_COUNTERS)[
        ["customer_id", "day", *DAY_COUNTERS]
    ]


_ITEM_COLUMNS = ["customer_id", "sku", "name", "category", "seen_at", "bought", "viewed"]


def _products(rows: list[tuple[str, str, str | None, str | None, int, int, int]]) -> pd.DataFrame:
    if not rows:
        return Activity.empty().products
    frame = pd.DataFrame(rows, columns=_ITEM_COLUMNS)
    frame = frame[(frame["bought"] > 0) | (frame["viewed"] > 0)]
    return _sum(frame, ["customer_id", "sku"], PRODUCT_COUNTERS)


def _items(rows: list[tuple[str, str, str | None, str | None, int, int, int]]) -> pd.DataFrame:
    if not rows:
        return Activity.empty().catalogue
    frame = pd.DataFrame(rows, columns=_ITEM_COLUMNS)
    return _latest(frame[["sku", "name", "category", "seen_at"]])
