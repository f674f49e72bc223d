"""Judging models on a time-later holdout: the customers known at its start, scored as of then,
against what they spent in the days after it, which no model being judged was trained on."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from service.ml.clv_model import ClvModel
from service.ml.examples import EventLog, Profiles, Sources
from service.ml.metrics import evaluate


@dataclass(frozen=True)
class Holdout:
    """(start, end]: models trained on events up to ``start`` are judged on the spend after it."""

    start: datetime
    end: datetime

    @classmethod
    def ending(cls, end: datetime, days: int) -> Holdout:
        return cls(end - timedelta(days=days), end)

    @property
    def days(self) -> int:
        return (self.end - self.start).days


def holdout_metrics(
    models: dict[str, ClvModel],
    log: EventLog,
    profiles: Profiles,
    sources: Sources,
    holdout: Holdout,
) -> dict[str, dict[str, Any]]:
    """``evaluate`` for each model, and for the BTYD baseline (as the first model computes it),
    on every customer with an event by the holdout's start, predicting its length in days."""
    results: dict[str, dict[str, Any]] = {}
    for name, model in models.items():
        carried = replace(model, horizon_days=holdout.days)
        examples = carried.examples(log, profiles, sources, holdout.start, label_days=holdout.days)
        scores = carried.predict(examples)
        actual = np.asarray(examples.labels, dtype=float)
        results[name] = evaluate(
            actual,
            scores["clv"].to_numpy(),
            purchase_probability=scores["purchase_probability"].to_numpy(),
            p10=scores["p10"].to_numpy(),
            p90=scores["p90"].to_numpy(),
        )
        results.setdefault("btyd", evaluate(actual, scores["btyd_clv"].to_numpy()))
    return results
