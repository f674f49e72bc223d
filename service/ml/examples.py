"""Training and scoring examples at a cut-off: the portrait, BTYD outputs and event sequences
as of the cut-off, and (for training) the spend in the horizon after it.

``EventLog`` holds the events in memory once, so examples at several rolling cut-offs are cut
from it without re-reading the database; every example only sees events at or before its cut-off.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, TypeVar

import numpy as np
import pandas as pd

from service.ml.activity import MONEY_UNITS, Activity, aggregate_frames, day_number
from service.ml.btyd.baseline import OUTPUTS as BTYD_OUTPUTS
from service.ml.btyd.baseline import BtydBaseline
from service.ml.features import FeatureDef
from service.ml.insufficient import require_events
from service.ml.portrait import FeaturePipeline
from service.ml.prefixes import Orders, prefixes
from service.ml.sequences import channel_names, event_sequences, first_item_categories

HORIZON_FEATURE = "horizon_days"
"""The horizon an example's features and label describe: training mixes windows of several
lengths (the freshest ones are shorter), so the network learns how spend grows with the horizon."""
EXTRA_FEATURES = (*BTYD_OUTPUTS, HORIZON_FEATURE)
"""Tabular features after the pipeline's: the BTYD outputs over the horizon, and the horizon."""
EXTRA_DEFINITIONS = (
    FeatureDef(
        "btyd_expected_orders", "BTYD expected orders in the horizon.", "orders", "BTYD baseline"
    ),
    FeatureDef(
        "btyd_probability_alive",
        "BTYD probability of being active.",
        "ratio",
        "BTYD baseline",
    ),
    FeatureDef(
        "btyd_order_value", "Gamma-Gamma expected value of an order.", "currency", "BTYD baseline"
    ),
    FeatureDef("btyd_clv", "BTYD expected spend in the horizon.", "currency", "BTYD baseline"),
    FeatureDef(HORIZON_FEATURE, "The horizon asked for (not explained: fixed).", "days", "horizon"),
)

V = TypeVar("V")
Profiles = Mapping[str, Mapping[str, Any]]
Sources = Mapping[str, set[str]]


@dataclass(frozen=True)
class EventLog:
    events: pd.DataFrame  # EVENT_COLUMNS
    items: pd.DataFrame  # ITEM_COLUMNS

    @classmethod
    def from_frames(cls, frames: list[tuple[pd.DataFrame, pd.DataFrame]]) -> EventLog:
        events = pd.concat([e for e, _ in frames if len(e)], ignore_index=True)
        items = [i for _, i in frames if len(i)]
        return cls(events, pd.concat(items, ignore_index=True) if items else frames[0][1])

    def until(self, moment: datetime) -> EventLog:
        cut = int(moment.timestamp())
        return EventLog(
            self.events[self.events["seconds"] <= cut], self.items[self.items["seconds"] <= cut]
        )

    def activity(self) -> Activity:
        return aggregate_frames(self.events, self.items)

    @property
    def first_moment(self) -> datetime:
        """The earliest event's time; an empty log has none (``InsufficientDataError``)."""
        require_events(self.events)
        return datetime.fromtimestamp(
            int(self.events["seconds"].min()), tz=datetime.now().astimezone().tzinfo
        )

    def with_orders(self, customers: pd.Index, amounts: np.ndarray, moment: datetime) -> EventLog:
        """This log plus one order per customer at ``moment``, of ``amounts`` in the shop
        currency, numbered after its last event: what-if histories (tests, benchmarks)."""
        first = int(self.events["seq"].max()) + 1
        added = pd.DataFrame(
            {
                "seq": np.arange(first, first + len(customers)),
                "customer_id": customers,
                "type": "purchase",
                "seconds": int(moment.timestamp()),
                "amount_units": np.round(np.asarray(amounts) * MONEY_UNITS).astype(np.int64),
            }
        )
        return EventLog(pd.concat([self.events, added], ignore_index=True), self.items)

    def spend_between(self, start: datetime, end: datetime) -> pd.Series:
        """Spend on orders in (start, end], per customer, in the shop currency. A purchase of
        negative amount is a refund (as the activity reads it), not negative spend."""
        seconds = self.events["seconds"]
        window = self.events[
            (seconds > int(start.timestamp()))
            & (seconds <= int(end.timestamp()))
            & (self.events["type"] == "purchase")
            & (self.events["amount_units"] > 0)
        ]
        return window.groupby("customer_id")["amount_units"].sum() / MONEY_UNITS


@dataclass
class Examples:
    customers: pd.Index
    tabular: pd.DataFrame  # raw (unscaled) features, one row per customer
    sequences: np.ndarray  # (n, length, channels)
    portrait: pd.DataFrame  # the behaviour features, for BTYD and reporting
    labels: np.ndarray | None = None  # spend in the label window after the cut-off
    earlier: Examples | None = None
    """The same customers at the same moment less their last 1, 2, ... orders
    (``service.ml.prefixes``), when built: one row per customer and prefix, ``customers``
    repeating."""

    def subset(self, mask: np.ndarray) -> Examples:
        """The examples where ``mask`` (n,) is true."""
        labels = self.labels[mask] if self.labels is not None else None
        before = self.earlier
        if before is not None:
            before = before.subset(before.customers.isin(self.customers[mask]))
        return Examples(
            self.customers[mask],
            self.tabular[mask],
            self.sequences[mask],
            self.portrait[mask],
            labels,
            before,
        )


@dataclass(frozen=True)
class RecentEvents:
    """Each customer's latest events, as the event sequences read them: an event frame with at
    least each customer's last ``sequence_length`` + 1 events at or before the cut-off, and the
    category of each event's first item (``first_item_categories``)."""

    events: pd.DataFrame  # EVENT_COLUMNS
    first_categories: pd.Series  # by seq


def build(
    log: EventLog,
    profiles: Profiles,
    sources: Sources,
    pipeline: FeaturePipeline,
    btyd: BtydBaseline,
    cutoff: datetime,
    horizon_days: int,
    sequence_length: int,
    label_days: int | None = None,
    activity: Activity | None = None,
    with_earlier: bool = False,
) -> Examples:
    """Examples for every customer with an event at or before ``cutoff``, their features
    describing ``horizon_days`` after it; ``btyd`` must be fitted on data at or before the cut-off
    too (its outputs are features). With ``label_days``, the labels are each customer's spend in
    that many days after the cut-off. ``activity``: the aggregates of ``log`` up to the cut-off,
    when the caller has them already (aggregating is the costly part). ``with_earlier``: with
    ``Examples.earlier``, which network-ranked scores are floored at."""
    past = log.until(cutoff)
    recent = RecentEvents(past.events, first_item_categories(past.items))
    moment = int(cutoff.timestamp())
    orders = Orders.latest(past.events, past.items, moment) if with_earlier else None
    examples = assemble(
        past.activity() if activity is None else activity,
        recent,
        profiles,
        sources,
        pipeline,
        btyd,
        cutoff,
        horizon_days,
        sequence_length,
        orders,
    )
    if label_days is not None:
        spend = log.spend_between(cutoff, cutoff + timedelta(days=label_days))
        labels = spend.reindex(examples.customers, fill_value=0.0).to_numpy(dtype=np.float32)
        examples = replace(examples, labels=labels)
    return examples


def assemble(
    activity: Activity,
    recent: RecentEvents,
    profiles: Profiles,
    sources: Sources,
    pipeline: FeaturePipeline,
    btyd: BtydBaseline,
    cutoff: datetime,
    horizon_days: int,
    sequence_length: int,
    orders: Orders | None = None,
) -> Examples:
    """Examples for every customer with activity at or before ``cutoff``, from their aggregates
    (``activity``: at or before the cut-off) and their latest events (``recent``), without the
    whole event log: what scoring reads from the stored portrait. ``orders``: each customer's
    latest orders, for ``Examples.earlier`` (``recent`` must then hold as many events more than
    a sequence needs as a customer has orders there: ``service.ml.prefixes``)."""
    cut = None
    if orders is not None and not orders.events.empty:
        # the prefixes are pseudo-customers beside the customers: one pass through the features
        cut = prefixes(activity, recent.events, orders)
        activity = Activity(
            days=pd.concat([activity.days, cut.activity.days], ignore_index=True),
            products=pd.concat([activity.products, cut.activity.products], ignore_index=True),
            catalogue=activity.catalogue,
        )
        events = pd.concat([recent.events, cut.events], ignore_index=True)
        recent = RecentEvents(events, recent.first_categories)
        profiles = _with_prefixes(profiles, cut.customers)  # a prefix has its customer's profile
        sources = _with_prefixes(sources, cut.customers)
    portrait = pipeline.transform(activity, profiles, sources, day_number(cutoff))
    btyd_outputs = btyd.predict(portrait, horizon_days)
    tabular = pd.concat([portrait, btyd_outputs], axis=1)
    tabular[HORIZON_FEATURE] = float(horizon_days)
    sequences = event_sequences(
        recent.events,
        recent.first_categories,
        portrait.index,
        int(cutoff.timestamp()),
        sequence_length,
        pipeline.categories_,
    )
    everyone = Examples(portrait.index, tabular, sequences, portrait)
    if cut is None:
        return everyone
    pseudo = everyone.customers.isin(cut.customers.index)
    examples, earlier = everyone.subset(~pseudo), everyone.subset(pseudo)
    customers = pd.Index(cut.customers.reindex(earlier.customers).to_numpy())
    return replace(examples, earlier=replace(earlier, customers=customers))


def _with_prefixes(by_customer: Mapping[str, V], customers: pd.Series) -> dict[str, V]:
    """``by_customer`` with each prefix (``customers``: their customer, by prefix) given its
    customer's value."""
    both = dict(by_customer)
    both.update((prefix, by_customer[c]) for prefix, c in customers.items() if c in by_customer)
    return both


def build_without_events(
    customers: pd.Index,
    profiles: Profiles,
    sources: Sources,
    pipeline: FeaturePipeline,
    btyd: BtydBaseline,
    horizon_days: int,
    sequence_length: int,
) -> Examples:
    """Examples for customers known only from their attributes: the portrait of a customer with
    no activity yet (every behaviour feature zero, their profile encoded) and an empty event
    sequence. Training never sees a customer without events (the nearest are those whose first
    events were browsing), so this cold-start score is what the network makes of the profile on
    an empty history; the response says it is one."""
    names = [definition.name for definition in pipeline.definitions()]
    portrait = pd.DataFrame(0.0, index=customers, columns=names)
    profile = pipeline.profile_.transform(customers, profiles, sources)
    portrait[profile.columns] = profile.reindex(customers).fillna(0.0)
    tabular = pd.concat([portrait, btyd.predict(portrait, horizon_days)], axis=1)
    tabular[HORIZON_FEATURE] = float(horizon_days)
    channels = len(channel_names(pipeline.categories_))
    sequences = np.zeros((len(customers), sequence_length, channels), dtype=np.float32)
    return Examples(customers, tabular, sequences, portrait)
