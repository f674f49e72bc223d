"""The fairness audit: how well the model serves each group of a profile attribute, and how far
apart the groups are. Pure: arrays in, a JSON-ready dict out (no web stack, no database).

Definitions, chosen so every number can be checked by hand:

- A group is one value of the attribute; a missing value (no source has it) is its own group,
  ``unknown``, so customers without the attribute are audited rather than silently dropped.
- Per group (fairlearn ``MetricFrame``): ``count``, ``mean_predicted`` and ``mean_actual`` spend,
  ``mae``, ``calibration_ratio`` = mean predicted / mean actual (1 is calibrated; undefined when
  the group spent nothing) and ``top_decile_share`` = the share of the group's customers whose
  predicted value is in the top decile of the whole population (predicted value at or above its
  90th percentile, ties included): what a "target the top 10%" campaign would select.
- Disparities per metric, as ``MetricFrame.difference()`` and ``.ratio()`` give them: the largest
  group value minus the smallest, and the smallest over the largest (1 = parity). Groups where a
  metric is undefined are left out of its disparity, as fairlearn does.
- Intervals: a percentile bootstrap. Customers are resampled with replacement ``bootstrap`` times
  (seeded, so a report is reproducible), every metric and disparity is recomputed on each
  resample, the top-decile threshold included, and the 2.5th and 97.5th percentiles kept; a
  group's intervals use the resamples that drew it. Near parity the difference's interval can
  lie wholly above its estimate: max - min over groups grows with the noise a resample adds to
  each (most in small groups), so the groups' own intervals tell better whether they differ.
  fairlearn can bootstrap a ``MetricFrame`` itself, but it recomputes through pandas ``groupby``
  (about 60 ms a resample for 5,000 customers: 12 s an attribute at 200 resamples) and holds the
  top-decile flags fixed; the resamples here are a few ``bincount`` calls each.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from fairlearn.metrics import MetricFrame, count  # type: ignore[import-untyped]

from service.ml.metrics import evaluate

UNKNOWN = "unknown"
TOP_SHARE = 0.1
INTERVAL = (0.025, 0.975)
METRICS = ("mean_predicted", "mean_actual", "mae", "calibration_ratio", "top_decile_share")
"""The metrics with disparities (``count`` has none: group sizes are not a harm)."""


def group_labels(values: Sequence[object]) -> np.ndarray:
    """Each customer's group: the value as text, ``unknown`` where it is missing."""
    return np.array([UNKNOWN if _missing(value) else str(value) for value in values], dtype=object)


def _missing(value: object) -> bool:
    return value is None or value == "" or (isinstance(value, float) and np.isnan(value))


def in_top_decile(predicted: np.ndarray) -> np.ndarray:
    """(n,) bool: predicted value at or above the population's 90th percentile."""
    flags: np.ndarray = predicted >= np.quantile(predicted, 1 - TOP_SHARE)
    return flags


def _mean_predicted(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    return float(np.mean(y_pred))


def _mean_actual(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    return float(np.mean(y_true))


def _mae(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    return float(np.mean(np.abs(np.asarray(y_true) - np.asarray(y_pred))))


def _calibration_ratio(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    actual = float(np.mean(y_true))
    return float(np.mean(y_pred)) / actual if actual > 0 else float("nan")


def _top_decile_share(y_true: np.ndarray, y_pred: np.ndarray, top: np.ndarray) -> float:
    return float(np.mean(top))


def metric_frame(
    actual: np.ndarray, predicted: np.ndarray, groups: np.ndarray, attribute: str
) -> MetricFrame:
    """The per-group metrics of one attribute (``groups`` from ``group_labels``)."""
    return MetricFrame(
        metrics={
            "count": count,
            "mean_predicted": _mean_predicted,
            "mean_actual": _mean_actual,
            "mae": _mae,
            "calibration_ratio": _calibration_ratio,
            "top_decile_share": _top_decile_share,
        },
        y_true=actual,
        y_pred=predicted,
        sensitive_features=pd.Series(groups, name=attribute),
        sample_params={"top_decile_share": {"top": in_top_decile(predicted)}},
    )


def group_metrics(
    actual: np.ndarray, predicted: np.ndarray, codes: np.ndarray, groups: int
) -> np.ndarray:
    """(len(METRICS), groups): the metrics of each group, NaN where undefined (an empty group,
    or a calibration ratio of a group that spent nothing). ``codes``: (n,) group numbers. The
    same quantities as ``metric_frame``, vectorised for the bootstrap."""
    size = np.bincount(codes, minlength=groups).astype(float)
    top = in_top_decile(predicted).astype(float)
    sums = np.stack(
        [
            np.bincount(codes, weights, minlength=groups)
            for weights in (predicted, actual, np.abs(actual - predicted), top)
        ]
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        means = np.where(size > 0, sums / size, np.nan)
        calibration = np.where(means[1] > 0, means[0] / means[1], np.nan)
    return np.stack([means[0], means[1], means[2], calibration, means[3]])


def disparities(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(difference, ratio), each (len(METRICS),), from ``group_metrics``: max - min and
    min / max over the groups where the metric is defined (NaN when none is, or max is 0)."""
    defined = np.isfinite(values)
    high = np.where(defined, values, -np.inf).max(axis=1)
    low = np.where(defined, values, np.inf).min(axis=1)
    some = defined.any(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        difference = np.where(some, high - low, np.nan)
        ratio = np.where(some & (high != 0), low / high, np.nan)
    return difference, ratio


@dataclass(frozen=True)
class Resamples:
    """One attribute's metrics on every bootstrap resample: ``groups`` (samples,
    len(METRICS), groups), NaN where a group drew no customer; ``disparities`` (samples, 2,
    len(METRICS)): difference and ratio."""

    groups: np.ndarray
    disparities: np.ndarray


def resample(
    actual: np.ndarray,
    predicted: np.ndarray,
    codes: Mapping[str, tuple[np.ndarray, int]],
    samples: int,
    seed: int,
) -> dict[str, Resamples]:
    """Per attribute (``codes``: name -> ((n,) group numbers, number of groups)), its metrics
    on ``samples`` resamples of the customers. All attributes share the resamples, and so do two
    models audited with one seed: their intervals are paired."""
    rng = np.random.default_rng(seed)
    n = len(actual)
    found = {
        name: Resamples(
            np.empty((samples, len(METRICS), groups)), np.empty((samples, 2, len(METRICS)))
        )
        for name, (_, groups) in codes.items()
    }
    for b in range(samples):
        pick = rng.integers(0, n, n)
        for name, (code, groups) in codes.items():
            values = group_metrics(actual[pick], predicted[pick], code[pick], groups)
            found[name].groups[b] = values
            found[name].disparities[b] = disparities(values)
    return found


def _interval(samples: np.ndarray) -> list[float] | None:
    defined = samples[np.isfinite(samples)]
    if not len(defined):
        return None
    low, high = np.quantile(defined, INTERVAL)
    return [float(low), float(high)]


def _number(value: Any) -> float | None:
    """JSON has no NaN: an undefined value is null."""
    number = float(value)
    return number if np.isfinite(number) else None


def _attribute_audit(frame: MetricFrame, groups: pd.Index, resamples: Resamples) -> dict[str, Any]:
    """The JSON of one attribute; ``groups``: the group of each code in ``resamples``."""
    by_group = frame.by_group
    difference, ratio = frame.difference(), frame.ratio()
    return {
        "groups": [
            {
                "group": str(group),
                "count": int(row["count"]),
                **{metric: _number(row[metric]) for metric in METRICS},
                "intervals": {
                    metric: _interval(resamples.groups[:, m, groups.get_loc(group)])
                    for m, metric in enumerate(METRICS)
                },
            }
            for group, row in by_group.iterrows()
        ],
        "disparities": {
            metric: {
                "difference": _number(difference[metric]),
                "difference_interval": _interval(resamples.disparities[:, 0, m]),
                "ratio": _number(ratio[metric]),
                "ratio_interval": _interval(resamples.disparities[:, 1, m]),
            }
            for m, metric in enumerate(METRICS)
        },
    }


def audit(
    actual: np.ndarray,
    predicted: np.ndarray,
    attributes: Mapping[str, Sequence[object]],
    *,
    bootstrap: int,
    seed: int = 0,
) -> dict[str, Any]:
    """The audit of predictions against outcomes. ``actual``, ``predicted``: (n,) spend per
    customer; ``attributes``: name -> (n,) values (None where missing); ``bootstrap``: resamples
    behind the intervals. Returns the overall accuracy (``evaluate``), the top-decile threshold
    and, per attribute, its groups and disparities (definitions in the module docstring)."""
    actual = np.asarray(actual, dtype=float)
    predicted = np.asarray(predicted, dtype=float)
    labels = {name: group_labels(values) for name, values in attributes.items()}
    factorized = {name: pd.factorize(groups, sort=True) for name, groups in labels.items()}
    codes = {name: (code, len(uniques)) for name, (code, uniques) in factorized.items()}
    resamples = resample(actual, predicted, codes, bootstrap, seed)
    return {
        "accuracy": evaluate(actual, predicted),
        "top_decile_threshold": float(np.quantile(predicted, 1 - TOP_SHARE)),
        "attributes": {
            name: _attribute_audit(
                metric_frame(actual, predicted, groups, name),
                pd.Index(factorized[name][1]),
                resamples[name],
            )
            for name, groups in labels.items()
        },
    }
