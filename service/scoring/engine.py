"""Scores for a list of customers as of a moment: their events and attributes read from the
database, turned into the model's examples (the same code as training), predicted and, when
asked, explained. Customers with attributes but no events get a cold-start score; ids with
neither are left out (the caller says which were not found)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

import numpy as np
import pandas as pd
from sqlalchemy.orm import Session

from service.config import Settings
from service.ml.clv_model import SCORE_COLUMNS, ClvModel
from service.ml.examples import EventLog, Examples
from service.ml.sequences import channel_values
from service.portrait import repository as portrait
from service.scoring import explanations
from service.training import data


@dataclass(frozen=True)
class Computed:
    scores: pd.DataFrame  # index: customer ids; SCORE_COLUMNS and cold_start
    explanations: dict[str, bytes]  # by customer id, when asked for

    @classmethod
    def combine(cls, parts: Sequence[Computed]) -> Computed:
        if not parts:
            return cls(pd.DataFrame(columns=[*SCORE_COLUMNS, "cold_start"]), {})
        blobs = {customer: blob for part in parts for customer, blob in part.explanations.items()}
        return cls(pd.concat([part.scores for part in parts]), blobs)


def compute(
    session: Session,
    settings: Settings,
    model: ClvModel,
    customer_ids: Sequence[str],
    *,
    as_of: datetime,
    horizon_days: int,
    explain: bool,
) -> Computed:
    model = replace(model, horizon_days=horizon_days)
    frames = list(portrait.event_frames(session, until=as_of, customer_ids=customer_ids))
    profiles, sources = data.profiles(session, settings, customer_ids)
    parts: list[Examples] = []
    if any(len(events) for events, _ in frames):
        parts.append(model.examples(EventLog.from_frames(frames), profiles, sources, as_of))
    seen = set(parts[0].customers) if parts else set()
    attributes_only = pd.Index(sorted(c for c in set(customer_ids) - seen if c in profiles))
    if len(attributes_only):
        parts.append(model.examples_without_events(attributes_only, profiles, sources))
    computed = []
    for examples in parts:
        scored = model.predict(examples)
        scored["cold_start"] = examples.portrait["has_purchased"].to_numpy() <= 0
        blobs: dict[str, bytes] = {}
        if explain:
            values = np.concatenate(
                [
                    examples.tabular[model.feature_names].to_numpy(np.float64),
                    channel_values(examples.sequences),
                ],
                axis=1,
            )
            packed = explanations.pack(model.explain(examples), values)
            blobs = dict(zip(examples.customers, packed, strict=True))
        computed.append(Computed(scored, blobs))
    return Computed.combine(computed)
