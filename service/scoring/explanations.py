"""Attributions as stored (compact float32 bytes) and as served (named, grouped, sorted).

A stored explanation is one float32 vector per customer: the base value, one contribution per
tabular feature and per event channel, then the customer's values of each. About 1.2 KB, where
JSON with names would be ten times that for every customer; names and descriptions come from
the model version that computed it (``ClvModel.definitions``).
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from service.ml.clv_model import ClvModel
from service.ml.explain import ADDITIVITY_TOLERANCE, Attributions
from service.scoring.schemas import ExplanationRead, FeatureContribution, GroupContribution


def pack(attributions: Attributions, values: np.ndarray) -> list[bytes]:
    """One blob per customer; ``values``: (n, F + E), the tabular features then the channels."""
    vectors = np.concatenate(
        [attributions.base[:, None], attributions.tabular, attributions.sequence, values], axis=1
    ).astype(np.float32)
    return [row.tobytes() for row in vectors]


def unpack(blob: bytes, model: ClvModel) -> ExplanationRead:
    tabular, channels = model.definitions
    width = len(tabular) + len(channels)
    vector = np.frombuffer(blob, dtype=np.float32).astype(np.float64)
    if len(vector) != 1 + 2 * width:
        raise ValueError(f"a stored explanation of {len(vector)} values does not fit this model")
    contributions, values = vector[1 : 1 + width], vector[1 + width :]
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
        base_value=round(float(vector[0]), 6),
        tolerance=ADDITIVITY_TOLERANCE,
        groups=[
            GroupContribution(group=group, contribution=round(total, 6))
            for group, total in sorted(groups.items(), key=lambda item: -abs(item[1]))
        ],
        features=features,
    )


def mean_absolute(blobs: list[bytes], model: ClvModel) -> tuple[int, np.ndarray, dict[str, float]]:
    """Over the stored blobs that fit the model: how many, the mean |contribution| per feature
    and the mean |group sum| per group."""
    tabular, channels = model.definitions
    definitions = [*tabular, *channels]
    width = len(definitions)
    rows = [np.frombuffer(b, dtype=np.float32) for b in blobs if len(b) == 4 * (1 + 2 * width)]
    if not rows:
        return 0, np.zeros(width), {}
    contributions = np.stack(rows)[:, 1 : 1 + width].astype(np.float64)
    names = sorted({d.group for d in definitions})
    members = {g: [i for i, d in enumerate(definitions) if d.group == g] for g in names}
    groups = {
        g: float(np.abs(contributions[:, idx].sum(axis=1)).mean()) for g, idx in members.items()
    }
    return len(rows), np.abs(contributions).mean(axis=0), groups
