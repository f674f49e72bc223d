"""Attributions as stored (compact float32 bytes) and as served (named, grouped, sorted).

A stored explanation is one float32 vector per customer: the base value, one contribution per
tabular feature and per event channel, then the customer's values of each. About 1.2 KB, where
JSON with names would be ten times that for every customer; names and descriptions come from
the model version that computed it (``ClvModel.definitions``).
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from service.ml import lime_explain
from service.ml.clv_model import ClvModel
from service.ml.examples import Examples
from service.ml.explain import ADDITIVITY_TOLERANCE, Attributions
from service.ml.lime_explain import LimeAttributions
from service.ml.sequences import channel_values
from service.scoring.schemas import ExplanationRead, FeatureContribution, GroupContribution


def pack(attributions: Attributions, values: np.ndarray) -> list[bytes]:
    """One blob per customer; ``values``: (n, F + E), the tabular features then the channels."""
    vectors = np.concatenate(
        [attributions.base[:, None], attributions.tabular, attributions.sequence, values], axis=1
    ).astype(np.float32)
    return [row.tobytes() for row in vectors]


def unpack(blob: bytes, model: ClvModel, scale: float = 1.0) -> ExplanationRead:
    """``scale``: the factor the score is served with (``service.scoring.value``); the base
    value and contributions take it too, so they still add up to the served clv."""
    tabular, channels = model.definitions
    width = len(tabular) + len(channels)
    vector = np.frombuffer(blob, dtype=np.float32).astype(np.float64)
    if len(vector) != 1 + 2 * width:
        raise ValueError(f"a stored explanation of {len(vector)} values does not fit this model")
    contributions, values = vector[1 : 1 + width] * scale, vector[1 + width :]
    return _read(float(vector[0]) * scale, contributions, values, model, ADDITIVITY_TOLERANCE)


def lime(
    attributions: LimeAttributions, row: int, values: np.ndarray, model: ClvModel, scale: float
) -> ExplanationRead:
    """The LIME explanation of customer ``row`` (``values``: their tabular features then
    channels) in the shape SHAP's are served in, times ``scale`` (as ``unpack``); its tolerance
    is the gap it has, not a bound."""
    contributions = np.concatenate([attributions.tabular[row], attributions.sequence[row]])
    score, local = attributions.score[row] * scale, attributions.local_prediction[row] * scale
    gap = round(float(abs(local - score) / max(score, 1.0)), 6)
    explanation = _read(
        float(attributions.intercept[row]) * scale, contributions * scale, values, model, gap
    )
    update = {"method": "lime", "local_prediction": round(float(local), 6)}
    return explanation.model_copy(update=update | {"fit_r2": round(float(attributions.r2[row]), 6)})


def lime_all(model: ClvModel, examples: Examples, scale: float) -> dict[str, ExplanationRead]:
    """LIME's explanation of each customer of ``examples`` (``service.ml.lime_explain``), by
    customer id, times ``scale``; ``model`` at the horizon the examples describe."""
    attributions = lime_explain.explain(model, examples)
    values = np.concatenate(
        [
            examples.tabular[model.feature_names].to_numpy(np.float64),
            channel_values(examples.sequences),
        ],
        axis=1,
    )
    return {
        str(customer): lime(attributions, row, values[row], model, scale)
        for row, customer in enumerate(examples.customers)
    }


def _read(
    base: float, contributions: np.ndarray, values: np.ndarray, model: ClvModel, tolerance: float
) -> ExplanationRead:
    """Named, grouped and sorted: the served shape of either method's attributions."""
    tabular, channels = model.definitions
    features = [
        FeatureContribution(
            name=definition.name,
            group=definition.group,
            description=definition.description,
            unit=definition.unit,
            value=round(float(value), 6),
            contribution=round(float(contribution), 6),
        )
        for definition, contribution, value in zip(
            [*tabular, *channels], contributions, values, strict=True
        )
    ]
    features.sort(key=lambda feature: -abs(feature.contribution))
    groups: dict[str, float] = defaultdict(float)
    for feature in features:
        groups[feature.group] += feature.contribution
    return ExplanationRead(
        base_value=round(base, 6),
        tolerance=tolerance,
        groups=[
            GroupContribution(group=group, contribution=round(total, 6))
            for group, total in sorted(groups.items(), key=lambda item: -abs(item[1]))
        ],
        features=features,
    )


def mean_absolute(
    blobs: list[bytes], model: ClvModel, scale: float = 1.0
) -> tuple[int, np.ndarray, dict[str, float]]:
    """Over the stored blobs that fit the model: how many, the mean |contribution| per feature
    and the mean |group sum| per group, times ``scale`` (as ``unpack``)."""
    tabular, channels = model.definitions
    definitions = [*tabular, *channels]
    width = len(definitions)
    rows = [np.frombuffer(b, dtype=np.float32) for b in blobs if len(b) == 4 * (1 + 2 * width)]
    if not rows:
        return 0, np.zeros(width), {}
    contributions = np.stack(rows)[:, 1 : 1 + width].astype(np.float64) * scale
    names = sorted({d.group for d in definitions})
    members = {g: [i for i, d in enumerate(definitions) if d.group == g] for g in names}
    groups = {
        g: float(np.abs(contributions[:, idx].sum(axis=1)).mean()) for g, idx in members.items()
    }
    return len(rows), np.abs(contributions).mean(axis=0), groups
