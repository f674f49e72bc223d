"""Customers as they stood just before their latest orders: the inputs that the network-ranked
scores are floored at (``service.ml.clv_model``), so that an order never lowers a customer's
expected orders.

The orders taken away are those of the ``FLOOR_WINDOW`` before the scoring moment (up to
``FLOOR_ORDERS``, never a customer's first). A customer with ``m`` of them has ``m`` prefixes:
prefix ``k`` is the customer at the same moment less their last ``k`` orders. Each prefix is a
pseudo-customer of its own in one aggregate and one event frame, so that the whole batch goes
through the feature pipeline, the BTYD models and the network once.

The prefixes are exact, so that for an order ``o`` at the scoring moment, prefix ``k + 1`` of
the customer with ``o`` is prefix ``k`` of the customer without it (the aggregates are integers
and subtract exactly; the event sequences are cut from a window that holds ``FLOOR_ORDERS``
events more than a sequence needs). The floor is the most over the customer and their prefixes,
so with ``o`` it covers everything it covered without: ``o`` cannot lower expected orders.

Why only the latest window: a customer less an order of months ago is a history nobody had (the
browsing and checkout around that order stay, the order does not), and the network reads such
histories wildly. Flooring at every order's prefix made the network's scores on a simulated
10,000-customer shop 71% too high in total (docs/decisions.md). Less a few hours' orders, a
customer is as they were before ordering, which the network has seen.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from service.ml.activity import Activity, aggregate_frames

FLOOR_WINDOW_SECONDS = 86_400
"""How far back from the scoring moment orders are taken away: a day. A score computed within a
day of an order is floored at the customer before it; a later one is the network's own."""

FLOOR_ORDERS = 32
"""At most this many of a customer's orders in the window are taken away, one at a time (the
latest): the floor's cost grows with them (one pseudo-customer each, carrying the customer's
aggregates)."""

_SEPARATOR = "\x1f"  # between a customer id and a prefix number (split at the last one)


@dataclass(frozen=True)
class Orders:
    """Each customer's orders in the window before a moment (``latest``): their purchases that
    are not refunds (``Activity`` reads a negative one as a refund), ``back`` 1 for the latest,
    and their items."""

    events: pd.DataFrame  # EVENT_COLUMNS and back
    items: pd.DataFrame  # ITEM_COLUMNS

    @classmethod
    def latest(cls, events: pd.DataFrame, items: pd.DataFrame, moment_seconds: int) -> Orders:
        """The orders in an event frame in the ``FLOOR_WINDOW_SECONDS`` up to the moment (the
        latest ``FLOOR_ORDERS`` of them), by time then number, and their items (from ``items``,
        which may hold others)."""
        seconds = events["seconds"]
        orders = events[
            (events["type"] == "purchase")
            & (events["amount_units"] >= 0)
            & (seconds > moment_seconds - FLOOR_WINDOW_SECONDS)
            & (seconds <= moment_seconds)
        ]
        orders = orders.sort_values(["customer_id", "seconds", "seq"])
        back = orders.groupby("customer_id").cumcount(ascending=False).to_numpy() + 1
        kept = orders[back <= FLOOR_ORDERS].assign(back=back[back <= FLOOR_ORDERS])
        return cls(kept.reset_index(drop=True), items[items["seq"].isin(kept["seq"])])

    @property
    def most(self) -> int:
        """The most orders a customer has here: how many events more than a sequence needs
        the latest events must hold for ``prefixes``."""
        return int(self.events["back"].max()) if len(self.events) else 0


@dataclass(frozen=True)
class Prefixes:
    """The prefixes' aggregates and latest events, by pseudo-customer, and who each is."""

    activity: Activity
    events: pd.DataFrame  # EVENT_COLUMNS: the window of ``recent`` less the prefix's orders
    customers: pd.Series  # the customer of each pseudo-customer, by pseudo-customer id


def prefixes(activity: Activity, recent: pd.DataFrame, orders: Orders) -> Prefixes:
    """The prefixes of every customer with an order in ``orders``, from their aggregates and
    their latest events (``recent``: at least as many more than a sequence needs as they have
    orders in ``orders``). A customer's first order is never taken away: a customer without
    orders is the network's in every candidate, at its own level, and a first order moves them
    to the candidate's (the blend's, a BTYD model's)."""
    ordered = orders.events["customer_id"].unique()
    activity = activity.of(ordered)
    recent = recent[recent["customer_id"].isin(ordered)]
    total = activity.days.groupby("customer_id")["orders"].sum()
    orders = _after_the_first(orders, total)
    counted = orders.events.groupby("customer_id").size()
    base, _ = _per_prefix(activity.days, counted)
    products, _ = _per_prefix(activity.products, counted)
    # an order is taken away in every prefix that reaches back to it: k >= back
    reach = (counted.reindex(orders.events["customer_id"]).to_numpy() - orders.events["back"]) + 1
    taken, _ = _per_prefix(orders.events, pd.Series(reach.to_numpy(), orders.events.index), "back")
    back_of = orders.events.set_index("seq")["back"]
    item_prefixes = taken[["seq", "customer_id"]].rename(columns={"customer_id": "prefix"})
    items = orders.items.merge(item_prefixes, on="seq").drop(columns="customer_id")
    items = items.rename(columns={"prefix": "customer_id"})
    whole = Activity(days=base, products=products, catalogue=activity.catalogue)
    left = whole.minus(aggregate_frames(taken.drop(columns="back"), items))
    window, k = _per_prefix(recent, counted)
    removed = back_of.reindex(window["seq"]).to_numpy() <= k  # NaN (not an order): kept
    events = window[~removed].reset_index(drop=True)
    ids = pd.unique(base["customer_id"].to_numpy())
    customers = pd.Series([i.rsplit(_SEPARATOR, 1)[0] for i in ids], index=ids)
    return Prefixes(left, events, customers)


def _after_the_first(orders: Orders, total: pd.Series) -> Orders:
    """``orders`` less each customer's first ever (``total``: their orders, by customer)."""
    events = orders.events
    kept = events["back"].to_numpy() < total.reindex(events["customer_id"]).to_numpy()
    events = events[kept].reset_index(drop=True)
    return Orders(events, orders.items[orders.items["seq"].isin(events["seq"])])


def _per_prefix(
    frame: pd.DataFrame, prefixes: pd.Series, start: str | None = None
) -> tuple[pd.DataFrame, np.ndarray]:
    """``frame``'s rows once per prefix of their customer (``prefixes``: how many, by customer
    id; or, with ``start``, by row, counting from that column's value), the customer id made the
    prefix's; and the prefix number of each row."""
    if start is None:
        counts = frame["customer_id"].map(prefixes).fillna(0).to_numpy(np.int64)
        first = np.ones(len(frame), np.int64)
    else:
        counts = prefixes.reindex(frame.index).fillna(0).to_numpy(np.int64)
        first = frame[start].to_numpy(np.int64)
    rows = np.repeat(np.arange(len(frame)), counts)
    offset = np.arange(len(rows)) - np.repeat(np.cumsum(counts) - counts, counts)
    k = np.repeat(first, counts) + offset
    out = frame.iloc[rows].reset_index(drop=True)
    out["customer_id"] = out["customer_id"].astype(str) + _SEPARATOR + k.astype(str)
    return out, k
