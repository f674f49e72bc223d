"""Scores for a list of customers as of a moment: their stored aggregates, latest events and
attributes read from the database (``service.portrait.service.scoring_inputs``), turned into
the model's examples (the same feature code as training), predicted and, when asked,
explained. Customers with attributes but no events get a cold-start score; ids with neither are
left out (the caller says which were not found)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Literal

import numpy as np
import pandas as pd
from sqlalchemy.orm import Session

from service.config import Quantization, Settings
from service.ml import pruning
from service.ml.activity import Activity, day_number
from service.ml.clv_model import SCORE_COLUMNS, ClvModel
from service.ml.examples import Examples, RecentEvents
from service.ml.prefixes import Orders
from service.ml.segments import rfm_segments
from service.ml.sequences import channel_values
from service.ops import metrics
from service.portrait import service as portrait
from service.risk.flags import RiskFlag, RiskRules, risk_flags
from service.scoring import explanations
from service.training import data

logger = logging.getLogger(__name__)

Purpose = Literal["request", "refresh"]


@dataclass(frozen=True)
class Computed:
    scores: pd.DataFrame  # index: customer ids; SCORE_COLUMNS and cold_start
    explanations: dict[str, bytes]  # by customer id, when asked for
    risk_flags: dict[str, list[RiskFlag]] = field(default_factory=dict)  # flagged customers only
    examples: list[Examples] = field(default_factory=list)  # what was scored: ``explained``

    @classmethod
    def combine(cls, parts: Sequence[Computed]) -> Computed:
        if not parts:
            columns = [*SCORE_COLUMNS, "cold_start", *HISTORY_COLUMNS, "segment"]
            return cls(pd.DataFrame(columns=columns), {})
        blobs = {customer: blob for part in parts for customer, blob in part.explanations.items()}
        flags = {customer: flag for part in parts for customer, flag in part.risk_flags.items()}
        examples = [examples for part in parts for examples in part.examples]
        return cls(pd.concat([part.scores for part in parts]), blobs, flags, examples)


HISTORY_COLUMNS = ("historic_revenue", "average_days_between_orders")
"""What a score keeps of the customer's past beside the prediction: net revenue so far (orders
less refunds) and the mean gap between purchase days (NaN with fewer than two)."""


def history_columns(portrait: pd.DataFrame) -> np.ndarray:
    """``HISTORY_COLUMNS`` from the behaviour features the score was computed from: the same
    moment, no second read."""
    revenue = portrait["spend_total"].to_numpy() - portrait["refunded_total"].to_numpy()
    repeat = portrait["frequency"].to_numpy() >= 1
    gaps = np.where(repeat, portrait["interpurchase_mean_days"].to_numpy(), np.nan)
    return np.column_stack([revenue, gaps]).astype(np.float64)


def unexplained_model(model: ClvModel, settings: Settings) -> ClvModel:
    """What scores without explanations are computed with: the network pruned by
    ``CLV_PRUNE`` (a share of its hidden units removed), then int8-quantized with
    ``CLV_QUANTIZE=int8`` on the CPU (no gradients, so nothing to explain), else the model."""
    if settings.prune > 0:
        model = pruning.pruned(model, settings.prune)
    if settings.quantize == Quantization.int8 and model.device == "cpu":
        return model.quantized()
    return model


def compute(
    session: Session,
    settings: Settings,
    model: ClvModel,
    customer_ids: Sequence[str],
    *,
    as_of: datetime,
    horizon_days: int,
    explain: bool,
    purpose: Purpose,
) -> Computed:
    """``purpose`` labels the time taken in the metrics: computed to answer a request, or to
    refresh stored scores in the background. The risk flags come from the same events as the
    score, those at or before ``as_of``."""
    model = replace(model, horizon_days=horizon_days)
    with metrics.SCORING.labels(purpose).time():
        # a model that floors reads each customer's orders of the day, and as many events more
        # of the latest (full sequences once orders are taken away: service.ml.prefixes); the
        # orders first, so that one landing between the reads is at worst left in a prefix,
        # never taken away from aggregates that lack it (and its arrival marks the customer
        # stale, so this score is soon replaced)
        orders = portrait.latest_orders(session, customer_ids, as_of) if model.floors else None
        extra = orders.most if orders is not None else 0
        activity, recent = portrait.scoring_inputs(
            session, customer_ids, as_of, model.sequence_length + extra
        )
        parts = _examples(session, settings, model, customer_ids, as_of, activity, recent, orders)
        computed = Computed.combine([_score(model, examples, explain) for examples in parts])
        rules = RiskRules.from_settings(settings)
        flags = risk_flags(activity.days, day_number(as_of), rules)
    metrics.SCORED.labels(purpose).inc(len(computed.scores))
    return replace(computed, risk_flags=flags)


def _examples(
    session: Session,
    settings: Settings,
    model: ClvModel,
    customer_ids: Sequence[str],
    as_of: datetime,
    activity: Activity,
    recent: RecentEvents,
    orders: Orders | None,
) -> list[Examples]:
    """From their aggregates and latest events (and orders, when read) where customers have
    activity by ``as_of``; from the profile alone (cold start) where not."""
    profiles, sources = data.profiles(session, settings, customer_ids)
    parts: list[Examples] = []
    if not activity.days.empty:
        parts.append(
            model.examples_from_portrait(activity, recent, profiles, sources, as_of, orders)
        )
    seen = set(parts[0].customers) if parts else set()
    attributes_only = pd.Index(sorted(c for c in set(customer_ids) - seen if c in profiles))
    if len(attributes_only):
        parts.append(model.examples_without_events(attributes_only, profiles, sources))
    return parts


def _score(model: ClvModel, examples: Examples, explain: bool) -> Computed:
    """Scores (and attributions) of the examples; a customer whose score is not a finite number
    is logged and left out, like one whose computation fails, rather than break the batch's
    storage or response."""
    scored = model.predict(examples)
    finite = np.isfinite(scored[list(SCORE_COLUMNS)].to_numpy()).all(axis=1)
    if not finite.all():
        left_out = examples.customers[~finite]
        logger.error(
            "non-finite scores for %d customers, left out: %s", len(left_out), list(left_out[:10])
        )
        examples, scored = examples.subset(finite), scored.loc[finite].copy()
    scored["cold_start"] = examples.portrait["has_purchased"].to_numpy() <= 0
    scored[list(HISTORY_COLUMNS)] = history_columns(examples.portrait)
    scored["segment"] = rfm_segments(examples.portrait).to_numpy()  # audiences filter on it
    blobs = _explain(model, examples) if explain else {}
    return Computed(scored, blobs, examples=[examples])


def explained(model: ClvModel, computed: Computed) -> dict[str, bytes]:
    """The attributions of scores computed without them, from the very examples scored (no
    second read of the events: they add up to the scores stored)."""
    return {c: b for examples in computed.examples for c, b in _explain(model, examples).items()}


def _explain(model: ClvModel, examples: Examples) -> dict[str, bytes]:
    values = np.concatenate(
        [
            examples.tabular[model.feature_names].to_numpy(np.float64),
            channel_values(examples.sequences),
        ],
        axis=1,
    )
    with metrics.EXPLANATION.time():
        attributions = model.explain(examples)
    metrics.EXPLAINED.inc(len(examples.customers))
    packed = explanations.pack(attributions, values)
    return dict(zip(examples.customers, packed, strict=True))
