"""Each customer's recent events as a fixed-size float tensor, for the sequence networks.

Row layout, one row per event, oldest first, left-padded with zero rows to ``length``:
- channel 0: 1 for a real event (0 in padding);
- one channel per event type (one-hot);
- log(1 + amount) in the shop currency;
- log(1 + days from the event to the cut-off) / 7 and log(1 + days since the customer's
  previous event) / 7 (both about 0..1 over a few years);
- one channel per category of the event's first item (the model's vocabulary, plus "other").
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from service.ml.activity import MONEY_UNITS
from service.ml.features import FeatureDef

GROUP = "recent activity sequence"

EVENT_TYPES = (
    "purchase", "refund", "view", "add_to_cart", "remove_from_cart", "checkout_started",
    "session_start",
)  # fmt: skip
_FIXED = 1 + len(EVENT_TYPES) + 3  # present, types, amount, age, gap


def channel_names(categories: Sequence[str]) -> list[str]:
    return [
        "present",
        *(f"type={kind}" for kind in EVENT_TYPES),
        "log_amount",
        "log_days_ago",
        "log_days_since_previous",
        *(f"category={category}" for category in categories),
        "category=other",
    ]


def channel_definitions(categories: Sequence[str], length: int) -> list[FeatureDef]:
    """One definition per channel, for attributions: a contribution sums over the positions of
    the last ``length`` events; the value is ``channel_values``'."""
    recent = f"the last {length} events"
    return [
        FeatureDef("events_recent", f"Number of events among {recent}.", "events", GROUP),
        *(
            FeatureDef(f"recent_{kind}", f"'{kind}' events among {recent}.", "events", GROUP)
            for kind in EVENT_TYPES
        ),
        FeatureDef("recent_log_amount", f"Mean log(1 + amount) over {recent}.", "log", GROUP),
        FeatureDef("recent_age", f"Mean log(1 + days ago) / 7 over {recent}.", "log", GROUP),
        FeatureDef("recent_gaps", f"Mean log(1 + gap in days) / 7 over {recent}.", "log", GROUP),
        *(
            FeatureDef(f"recent_category={c}", f"Events in '{c}' among {recent}.", "events", GROUP)
            for c in [*categories, "other"]
        ),
    ]


def channel_values(sequences: np.ndarray) -> np.ndarray:
    """(n, channels): counts for the flag channels, means over real events for the others."""
    totals = sequences.sum(axis=1)
    events = np.maximum(totals[:, :1], 1.0)
    continuous = slice(1 + len(EVENT_TYPES), _FIXED)
    values: np.ndarray = totals.copy()
    values[:, continuous] = totals[:, continuous] / events
    return values


def first_item_categories(items: pd.DataFrame) -> pd.Series:
    """The category of each event's first item, by seq (what the sequences read of items):
    events without items are absent, None where the item names no category."""
    first = items.drop_duplicates("seq")
    return pd.Series(first["category"].to_numpy(), index=first["seq"].to_numpy())


def event_sequences(
    events: pd.DataFrame,
    first_categories: pd.Series,
    customers: pd.Index,
    cutoff_seconds: int,
    length: int,
    categories: Sequence[str],
) -> np.ndarray:
    """(len(customers), length, channels) float32: each customer's last ``length`` events at or
    before the cut-off. ``events`` is an event frame as in ``service.ml.activity`` (with at
    least each customer's last ``length`` + 1 events: the one before gives the oldest one's
    gap); ``first_categories`` as ``first_item_categories`` gives it."""
    channels = _FIXED + len(categories) + 1
    out = np.zeros((len(customers), length, channels), dtype=np.float32)
    row = customers.get_indexer(events["customer_id"].to_numpy())  # -1: not asked for
    seconds = events["seconds"].to_numpy(dtype=np.int64)
    seq = events["seq"].to_numpy(dtype=np.int64)
    inside = np.flatnonzero((row >= 0) & (seconds <= cutoff_seconds))
    if not len(inside):
        return out
    # By customer, then time, then seq; integer sorts (sorting the frame by customer id
    # strings was most of the cost on a whole log)
    order = inside[np.lexsort((seq[inside], seconds[inside], row[inside]))]
    row, seconds, seq = row[order], seconds[order], seq[order]
    ends = np.cumsum(np.bincount(row, minlength=len(customers)))
    from_end = ends[row] - 1 - np.arange(len(row))  # 0 for each customer's last event
    first_of_customer = np.ones(len(row), dtype=bool)
    first_of_customer[1:] = row[1:] != row[:-1]
    gap_days = np.where(first_of_customer, 0, np.diff(seconds, prepend=seconds[0]) / 86400)
    keep = from_end < length
    row, position = row[keep], length - 1 - from_end[keep]
    kind = events["type"].to_numpy()[order][keep]

    out[row, position, 0] = 1.0
    for offset, event_type in enumerate(EVENT_TYPES, start=1):
        out[row, position, offset] = kind == event_type
    amount = events["amount_units"].to_numpy(dtype=np.float64)[order][keep] / MONEY_UNITS
    out[row, position, 1 + len(EVENT_TYPES)] = np.log1p(np.maximum(amount, 0))
    out[row, position, 2 + len(EVENT_TYPES)] = (
        np.log1p((cutoff_seconds - seconds[keep]) / 86400) / 7
    )
    out[row, position, 3 + len(EVENT_TYPES)] = np.log1p(gap_days[keep]) / 7

    # The category slot of each event's first item; -1 (not in the vocabulary, or none named)
    # goes to "other". Events without items have none.
    found = first_categories.index.get_indexer(seq[keep])
    has_item = found >= 0
    named = first_categories.to_numpy()[found[has_item]]
    codes = pd.Index(list(categories), dtype=object).get_indexer(named)
    slot = np.where(codes < 0, len(categories), codes)
    out[row[has_item], position[has_item], _FIXED + slot] = 1.0
    return out
