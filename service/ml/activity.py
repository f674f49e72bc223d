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
        return _EMPTY

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
            catalogue=combined_catalogue([part.catalogue for part in parts]),
        )

    def of(self, customers: pd.Series | pd.Index) -> Activity:
        """These aggregates of the listed customers only."""
        return Activity(
            days=self.days[self.days["customer_id"].isin(customers)],
            products=self.products[self.products["customer_id"].isin(customers)],
            catalogue=self.catalogue,
        )

    def minus(self, other: Activity) -> Activity:
        """These aggregates less ``other``'s, which they include (its events were counted here
        too): counters subtract as they add, and rows left with no events are dropped. The
        catalogue stays this one's: the latest text of a product does not depend on who bought
        it when."""
        if other.days.empty and other.products.empty:
            return self
        negated = Activity(
            days=other.days.assign(**{name: -other.days[name] for name in DAY_COUNTERS}),
            products=other.products.assign(
                **{name: -other.products[name] for name in PRODUCT_COUNTERS}
            ),
            catalogue=_EMPTY.catalogue,
        )
        left = Activity.combine([self, negated])
        products = left.products
        kept = (products[list(PRODUCT_COUNTERS)] != 0).any(axis=1)
        return Activity(
            days=left.days[left.days["events"] != 0].reset_index(drop=True),
            products=products[kept].reset_index(drop=True),
            catalogue=self.catalogue,
        )


def _grouped(keys: dict[str, np.ndarray], values: dict[str, np.ndarray]) -> pd.DataFrame:
    """Sums of ``values`` per distinct tuple of ``keys``, one row per tuple, sorted by the keys.

    Hash factorisation and ``bincount`` rather than ``DataFrame.groupby``: the same speed on
    millions of rows, and a fraction of the per-call overhead on the 1,000-event batches that
    the ingestion aggregates (bench/features.py).
    """
    names = list(keys)
    codes, uniques = zip(*(pd.factorize(keys[name], sort=True) for name in names), strict=True)
    combined = codes[0].astype(np.int64)
    for code, unique in zip(codes[1:], uniques[1:], strict=True):
        combined = combined * len(unique) + code
    group, groups = pd.factorize(combined, sort=True)
    out: dict[str, Any] = {}
    rest = np.asarray(groups)
    for name, unique in reversed(list(zip(names[1:], uniques[1:], strict=True))):
        out[name] = np.asarray(unique)[rest % len(unique)]
        rest = rest // len(unique)
    out[names[0]] = np.asarray(uniques[0])[rest]
    for name, value in values.items():
        out[name] = _add_up(group, value.astype(np.int64), len(groups))
    return pd.DataFrame({name: out[name] for name in [*names, *values]})


MAX_COUNTER = 2**63 - 1
"""The largest value a stored counter holds (64-bit, both databases)."""


class CounterOverflowError(ValueError):
    """A sum of counters past ``MAX_COUNTER``: refused rather than wrapped around."""


def _add_up(group: np.ndarray, value: np.ndarray, size: int) -> np.ndarray:
    """Per-group sums, exact: in float64 while the total magnitude keeps every partial sum
    exact (below 2**53), else in Python integers, refused past ``MAX_COUNTER``."""
    if len(value) == 0 or np.abs(value.astype(np.float64)).sum() < 2**53:
        return np.bincount(group, weights=value, minlength=size).astype(np.int64)
    total = np.zeros(size, dtype=object)
    np.add.at(total, group, value.astype(object))
    if any(abs(sum_) > MAX_COUNTER for sum_ in total):
        raise CounterOverflowError(f"a sum of counters passes {MAX_COUNTER:,}")
    return total.astype(np.int64)


def _sum(frame: pd.DataFrame, keys: list[str], counters: Iterable[str]) -> pd.DataFrame:
    if frame.empty:
        return frame.reset_index(drop=True)
    return _grouped(
        {key: frame[key].to_numpy() for key in keys},
        {name: frame[name].to_numpy() for name in counters},
    )


_EMPTY = Activity(
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
"""Shared and never modified: every operation here returns new frames."""


def combined_catalogue(parts: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """One catalogue from several (of batches, or of training's ranks): the latest text wins."""
    return _latest(pd.concat(parts))


def _latest(catalogue: pd.DataFrame) -> pd.DataFrame:
    """One row per SKU: the text seen at the latest time; ties go to the greater name, so the
    result does not depend on the order in which events arrived. Sorted by SKU."""
    if catalogue.empty:
        return catalogue.reset_index(drop=True)
    sku_code, _ = pd.factorize(catalogue["sku"].to_numpy(), sort=True)
    name_code, _ = pd.factorize(catalogue["name"].fillna("").to_numpy(), sort=True)
    order = np.lexsort((name_code, catalogue["seen_at"].to_numpy(), sku_code))
    last = order[np.r_[sku_code[order][1:] != sku_code[order][:-1], True]]
    latest = catalogue.iloc[last]
    text = latest[["name", "category"]].astype(object)
    return pd.DataFrame(
        {
            "sku": latest["sku"].to_numpy(),
            "name": text["name"].where(text["name"].notna(), None).to_numpy(),  # one "missing"
            "category": text["category"].where(text["category"].notna(), None).to_numpy(),
            "seen_at": latest["seen_at"].to_numpy(),
        }
    )


def day_number(moment: datetime) -> int:
    """Days since 1970-01-01 of the UTC date of ``moment``."""
    return (moment.astimezone(UTC).date() - EPOCH).days


EVENT_COLUMNS = ["seq", "customer_id", "type", "seconds", "amount_units"]
"""The event frame: one row per event; ``seq`` identifies it, ``seconds`` since 1970 (UTC),
money in ten-thousandths."""
ITEM_COLUMNS = ["seq", "customer_id", "type", "seconds", "sku", "name", "category", "quantity"]
"""The item frame: one row per line item of an event (``seq``); ``quantity`` may be missing
(means 1)."""


def aggregate_frames(events: pd.DataFrame, items: pd.DataFrame) -> Activity:
    """The activity aggregates of an event frame and an item frame, vectorised.

    The two need not come from the same events: aggregates are additive, so a reader may stream
    events and items in separate chunks and combine the results.
    """
    if events.empty and items.empty:
        return _EMPTY
    kind, amount, item_kind = _negative_purchases_as_refunds(events, items)
    purchased = item_kind == "purchase"
    quantity = items["quantity"].fillna(1).to_numpy().astype(np.int64)
    bought_units = np.where(purchased, quantity, 0)
    day_values = {
        counter: np.concatenate(
            [(kind == event_type).astype(np.int64), np.zeros(len(items), np.int64)]
        )
        for event_type, counter in _TYPE_COUNTER.items()
    }
    day_values["spend_units"] = np.concatenate(
        [np.where(kind == "purchase", amount, 0), np.zeros(len(items), np.int64)]
    )
    day_values["refunded_units"] = np.concatenate(
        [np.where(kind == "refund", amount, 0), np.zeros(len(items), np.int64)]
    )
    day_values["units"] = np.concatenate([np.zeros(len(events), np.int64), bought_units])
    day_values["events"] = np.concatenate(
        [np.ones(len(events), np.int64), np.zeros(len(items), np.int64)]
    )
    seconds = np.concatenate([events["seconds"].to_numpy(), items["seconds"].to_numpy()]).astype(
        np.int64
    )
    days = _grouped(
        {
            "customer_id": np.concatenate(
                [events["customer_id"].to_numpy(), items["customer_id"].to_numpy()]
            ),
            "day": seconds // 86400,
        },
        {counter: day_values[counter] for counter in DAY_COUNTERS},
    )
    viewed = np.isin(item_kind, ["view", "add_to_cart"]).astype(np.int64)
    relevant = (bought_units > 0) | (viewed > 0)
    products = (
        _grouped(
            {
                "customer_id": items["customer_id"].to_numpy()[relevant],
                "sku": items["sku"].to_numpy()[relevant],
            },
            {"bought": bought_units[relevant], "viewed": viewed[relevant]},
        )
        if relevant.any()
        else _EMPTY.products
    )
    catalogue = (
        _latest(
            items[["sku", "name", "category", "seconds"]].rename(columns={"seconds": "seen_at"})
        )
        if len(items)
        else _EMPTY.catalogue
    )
    return Activity(days=days, products=products, catalogue=catalogue)


def _negative_purchases_as_refunds(
    events: pd.DataFrame, items: pd.DataFrame
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(event types, amounts, item types) with a purchase of negative amount read as a refund of
    that amount, items included. The API refuses negative amounts, but logs built elsewhere (and
    some exports) write refunds so; counted as orders they would make spend negative."""
    kind = events["type"].to_numpy()
    amount = events["amount_units"].to_numpy().astype(np.int64)
    item_kind = items["type"].to_numpy()
    negative = (kind == "purchase") & (amount < 0)
    if not negative.any():
        return kind, amount, item_kind
    refunded = np.isin(items["seq"].to_numpy(), events["seq"].to_numpy()[negative])
    return (
        np.where(negative, "refund", kind),
        np.abs(amount),
        np.where(refunded & (item_kind == "purchase"), "refund", item_kind),
    )


def aggregate(events: Iterable[EventRecord]) -> Activity:
    """The activity aggregates of ``events`` (any order): builds the frames, then
    ``aggregate_frames``."""
    event_rows: list[tuple[int, str, str, int, int]] = []
    item_rows: list[tuple[int, str, str, int, str, Any, Any, Any]] = []
    for seq, event in enumerate(events):
        seconds = int(event.occurred_at.timestamp())
        amount = int(event.amount * MONEY_UNITS) if event.amount is not None else 0
        event_rows.append((seq, event.customer_id, event.type, seconds, amount))
        for item in event.items or ():
            item_rows.append(
                (seq, event.customer_id, event.type, seconds, item["sku"], item.get("name"),
                 item.get("category"), item.get("quantity"))
            )  # fmt: skip
    return aggregate_frames(
        pd.DataFrame(event_rows, columns=EVENT_COLUMNS),
        pd.DataFrame(item_rows, columns=ITEM_COLUMNS),
    )
