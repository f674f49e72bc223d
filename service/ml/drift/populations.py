"""A drift check: the population a model was trained on against the one it scores now.

Reference: the customers active (any event) in the ``window_days`` before the model's training
data end (``data_to``), described as of that moment; current: the customers active in the
``window_days`` before the check, described as of the check. Each population sees only the
events at or before its own moment. Comparing the customers active in trailing windows, rather
than the same customers then and now, keeps an ageing customer base from looking like drift:
last year's buyers are older today whatever the market does.

Compared: every portrait feature the model uses except the ``calendar`` group (the season of
the cut-off and of the first visit: the first moves with the date by construction, the second
with the cohort mix, so they differ between any two moments and say nothing about customers),
the model's predicted spend, the purchase rate of the whole shop and of each profile segment
(``service.ml.drift.statistics.SegmentRate``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd

from service.ml.clv_model import ClvModel
from service.ml.drift.statistics import (
    PurchaseRate,
    SegmentRate,
    Shift,
    Thresholds,
    compare,
    compare_columns,
    purchase_rate,
    relative_change,
    segment_rates,
    window_orders,
)
from service.ml.examples import EventLog, Profiles, Sources
from service.ml.features import FeatureDef

EXCLUDED_GROUPS = frozenset({"calendar"})


@dataclass(frozen=True)
class Population:
    """The customers active in the window before ``moment``, as of ``moment``."""

    moment: datetime
    features: pd.DataFrame  # customers x monitored features
    scores: np.ndarray  # the model's expected spend (clv) of each
    orders: pd.Series  # each one's orders in the window (``window_orders``)


@dataclass(frozen=True)
class FeatureDrift:
    feature: FeatureDef
    shift: Shift
    drifted: bool


@dataclass(frozen=True)
class DriftResult:
    reference: Population
    current: Population
    window_days: int
    thresholds: Thresholds
    features: list[FeatureDrift]  # largest PSI first
    score: Shift
    score_drifted: bool
    reference_rate: PurchaseRate
    current_rate: PurchaseRate
    rate_change: float | None
    rate_drifted: bool
    segments: list[tuple[SegmentRate, bool]]  # largest absolute excess change first

    @property
    def reasons(self) -> list[str]:
        """One sentence per drifted item, for people (``reasons``)."""
        return reasons(self)

    @property
    def drifted(self) -> bool:
        return bool(self.reasons)


def monitored_features(model: ClvModel) -> list[FeatureDef]:
    return [d for d in model.pipeline.definitions() if d.group not in EXCLUDED_GROUPS]


def population(
    log: EventLog,
    profiles: Profiles,
    sources: Sources,
    model: ClvModel,
    moment: datetime,
    window_days: int,
) -> Population:
    """``log`` may hold later events: only those at or before ``moment`` are used."""
    past = log.until(moment)
    orders = window_orders(past, moment, window_days)
    active = EventLog(
        past.events[past.events["customer_id"].isin(orders.index)],
        past.items[past.items["customer_id"].isin(orders.index)],
    )
    names = [d.name for d in monitored_features(model)]
    if orders.empty:
        return Population(moment, pd.DataFrame(columns=names), np.zeros(0), orders)
    examples = model.examples(active, profiles, sources, moment)
    scores = model.predict(examples)["clv"].to_numpy()
    return Population(moment, examples.portrait[names], scores, orders)


def check(
    reference: Population,
    current: Population,
    model: ClvModel,
    profiles: Profiles,
    window_days: int,
    thresholds: Thresholds,
) -> DriftResult:
    definitions = {d.name: d for d in monitored_features(model)}
    features = [
        FeatureDrift(definitions[name], shift, shift.drifted(thresholds))
        for name, shift in compare_columns(reference.features, current.features).items()
    ]
    score = compare(reference.scores, current.scores)
    before = purchase_rate(reference.orders, window_days)
    after = purchase_rate(current.orders, window_days)
    change = relative_change(before.per_customer_30d, after.per_customer_30d)
    segments = [
        (segment, segment.drifted(thresholds))
        for segment in _segments(reference, current, model, profiles, window_days, thresholds)
    ]
    return DriftResult(
        reference=reference,
        current=current,
        window_days=window_days,
        thresholds=thresholds,
        features=features,
        score=score,
        score_drifted=score.drifted(thresholds),
        reference_rate=before,
        current_rate=after,
        rate_change=change,
        rate_drifted=change is not None and abs(change) >= thresholds.purchase_rate,
        segments=segments,
    )


def _segments(
    reference: Population,
    current: Population,
    model: ClvModel,
    profiles: Profiles,
    window_days: int,
    thresholds: Thresholds,
) -> list[SegmentRate]:
    """The segments of every categorical attribute the model encodes, largest excess change
    first. Profiles are as stored now (attributes carry no history)."""
    found: list[SegmentRate] = []
    for attribute in model.pipeline.profile_.levels_:

        def level(customers: pd.Index, name: str = attribute) -> pd.Series:
            values = [profiles.get(c, {}).get(name) for c in customers]
            return pd.Series(values, index=customers, dtype=object).map(
                lambda value: None if value is None else str(value)
            )

        found += segment_rates(
            reference.orders,
            current.orders,
            level(reference.orders.index),
            level(current.orders.index),
            attribute,
            window_days,
            thresholds.min_segment_customers,
        )
    return sorted(found, key=lambda segment: -abs(segment.excess_change))


def reasons(result: DriftResult) -> list[str]:
    """One sentence per drifted item, for people: the shop's rate, its segments, the score,
    then the features."""
    found = []
    if result.rate_drifted and result.rate_change is not None:
        found.append(
            f"purchase rate {result.rate_change:+.0%}: "
            f"{result.reference_rate.per_customer_30d:.3f} -> "
            f"{result.current_rate.per_customer_30d:.3f} orders per active customer per 30 days"
        )
    for segment, drifted in result.segments:
        if drifted:
            found.append(
                f"purchase rate of {segment.attribute}={segment.level} "
                f"{segment.excess_change:+.0%} against the median {segment.attribute} "
                f"(own change {segment.change:+.0%})"
            )
    if result.score_drifted:
        found.append(_shift_reason("predicted spend (clv)", result.score))
    for drift in result.features:
        if drift.drifted:
            found.append(_shift_reason(f"feature {drift.feature.name}", drift.shift))
    return found


def _shift_reason(what: str, shift: Shift) -> str:
    return (
        f"{what}: PSI {shift.psi:.2f}, KS {shift.ks:.2f}, "
        f"mean {shift.reference_mean:.4g} -> {shift.current_mean:.4g}"
    )
