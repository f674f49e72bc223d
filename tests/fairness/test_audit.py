"""The audit against a hand computation on ten customers and two attributes.

The customers (actual spend, predicted spend, gender, region):

    0:   0,  10, F,    north        5:  60,  40, M,    south
    1:  20,  10, F,    north        6:  10,  30, -,    north
    2:  40,  50, F,    south        7:  30,  20, -,    south
    3: 100,  80, M,    south        8: 200, 150, F,    south
    4:   0,   0, M,    north        9:  50,  60, M,    north

The predictions sorted: 0 10 10 20 30 40 50 60 80 150. Their 90th percentile (linear, position
0.9 x 9 = 8.1) is 80 + 0.1 x (150 - 80) = 87, so the top decile is customer 8 alone.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from service.fairness.audit import (
    METRICS,
    audit,
    disparities,
    group_labels,
    group_metrics,
    metric_frame,
)

ACTUAL = np.array([0, 20, 40, 100, 0, 60, 10, 30, 200, 50], dtype=float)
PREDICTED = np.array([10, 10, 50, 80, 0, 40, 30, 20, 150, 60], dtype=float)
GENDER = ["F", "F", "F", "M", "M", "M", None, None, "F", "M"]
REGION = ["north", "north", "south", "south", "north", "south", "north", "south", "south", "north"]

# By hand. Gender F = customers 0, 1, 2, 8; M = 3, 4, 5, 9; unknown = 6, 7.
#   F: predicted 10+10+50+150 = 220 / 4 = 55; actual 0+20+40+200 = 260 / 4 = 65;
#      errors 10+10+10+50 = 80 / 4 = 20; calibration 55/65 = 11/13; top decile 1 of 4.
#   M: predicted 80+0+40+60 = 180 / 4 = 45; actual 100+0+60+50 = 210 / 4 = 52.5;
#      errors 20+0+20+10 = 50 / 4 = 12.5; calibration 45/52.5 = 6/7; top decile 0 of 4.
#   unknown: predicted 30+20 = 50 / 2 = 25; actual 10+30 = 40 / 2 = 20; errors 20+10 = 30 / 2
#      = 15; calibration 25/20 = 1.25; top decile 0 of 2.
GENDER_GROUPS = {
    "F": (4, 55.0, 65.0, 20.0, 11 / 13, 0.25),
    "M": (4, 45.0, 52.5, 12.5, 6 / 7, 0.0),
    "unknown": (2, 25.0, 20.0, 15.0, 1.25, 0.0),
}
GENDER_DISPARITIES = {  # (max - min, min / max)
    "mean_predicted": (55 - 25, 25 / 55),
    "mean_actual": (65 - 20, 20 / 65),
    "mae": (20 - 12.5, 12.5 / 20),
    "calibration_ratio": (1.25 - 11 / 13, (11 / 13) / 1.25),
    "top_decile_share": (0.25 - 0.0, 0.0 / 0.25),
}
# Region north = customers 0, 1, 4, 6, 9; south = 2, 3, 5, 7, 8.
#   north: predicted 10+10+0+30+60 = 110 / 5 = 22; actual 0+20+0+10+50 = 80 / 5 = 16;
#      errors 10+10+0+20+10 = 50 / 5 = 10; calibration 22/16 = 1.375; top decile 0 of 5.
#   south: predicted 50+80+40+20+150 = 340 / 5 = 68; actual 40+100+60+30+200 = 430 / 5 = 86;
#      errors 10+20+20+10+50 = 110 / 5 = 22; calibration 68/86 = 34/43; top decile 1 of 5.
REGION_GROUPS = {
    "north": (5, 22.0, 16.0, 10.0, 1.375, 0.0),
    "south": (5, 68.0, 86.0, 22.0, 34 / 43, 0.2),
}
REGION_DISPARITIES = {
    "mean_predicted": (68 - 22, 22 / 68),
    "mean_actual": (86 - 16, 16 / 86),
    "mae": (22 - 10, 10 / 22),
    "calibration_ratio": (1.375 - 34 / 43, (34 / 43) / 1.375),
    "top_decile_share": (0.2 - 0.0, 0.0 / 0.2),
}
FIELDS = ("count", *METRICS)


def run_audit(bootstrap: int = 200, seed: int = 0) -> dict[str, object]:
    return audit(
        ACTUAL, PREDICTED, {"gender": GENDER, "region": REGION}, bootstrap=bootstrap, seed=seed
    )


@pytest.mark.parametrize(
    ("attribute", "groups", "expected_disparities"),
    [("gender", GENDER_GROUPS, GENDER_DISPARITIES), ("region", REGION_GROUPS, REGION_DISPARITIES)],
)
def test_group_metrics_and_disparities_match_the_hand_computation(
    attribute: str,
    groups: dict[str, tuple[float, ...]],
    expected_disparities: dict[str, tuple[float, float]],
) -> None:
    found = run_audit()["attributes"][attribute]  # type: ignore[index]

    assert [g["group"] for g in found["groups"]] == list(groups)
    for group in found["groups"]:
        expected = dict(zip(FIELDS, groups[group["group"]], strict=True))
        assert {f: group[f] for f in FIELDS} == pytest.approx(expected, abs=1e-12)
    for metric, (difference, ratio) in expected_disparities.items():
        disparity = found["disparities"][metric]
        assert disparity["difference"] == pytest.approx(difference, abs=1e-12), metric
        assert disparity["ratio"] == pytest.approx(ratio, abs=1e-12), metric


def test_overall_accuracy_and_the_top_decile_threshold() -> None:
    found = run_audit()

    assert found["top_decile_threshold"] == pytest.approx(87.0)
    accuracy = found["accuracy"]
    # errors 80 + 50 + 30 = 160 over 10 customers; predicted 450 against actual 510
    assert accuracy["customers"] == 10  # type: ignore[index]
    assert accuracy["mae"] == pytest.approx(16.0)  # type: ignore[index]
    assert accuracy["aggregate_revenue_error"] == pytest.approx(450 / 510 - 1)  # type: ignore[index]


def test_bootstrap_intervals_hold_the_estimate_and_repeat_for_a_seed() -> None:
    first, again, other = run_audit(seed=7), run_audit(seed=7), run_audit(seed=8)

    assert first == again
    assert first != other
    for audited in first["attributes"].values():  # type: ignore[attr-defined]
        for group in audited["groups"]:
            for metric in METRICS:
                low, high = group["intervals"][metric] or (group[metric], group[metric])
                assert low <= group[metric] <= high, (group["group"], metric)
        for metric, disparity in audited["disparities"].items():
            for kind in ("difference", "ratio"):
                low, high = disparity[f"{kind}_interval"]
                assert low <= disparity[kind] <= high, (metric, kind)


def test_the_vectorised_bootstrap_statistic_is_fairlearns_on_the_sample_itself() -> None:
    """The resamples are computed without fairlearn (for speed); on the original sample they
    must give what ``MetricFrame`` gives, on data with ties, zeros and a missing group."""
    rng = np.random.default_rng(3)
    actual = np.where(rng.random(500) < 0.4, 0.0, rng.gamma(1.0, 80.0, 500))
    predicted = np.round(rng.gamma(1.0, 60.0, 500), -1)  # many ties at the threshold
    groups = group_labels(list(rng.choice(np.array(["a", "b", "c", ""], dtype=object), 500)))
    codes, uniques = pd.factorize(groups, sort=True)

    frame = metric_frame(actual, predicted, groups, "attribute")
    values = group_metrics(actual, predicted, codes, len(uniques))
    difference, ratio = disparities(values)

    np.testing.assert_allclose(values.T, frame.by_group[list(METRICS)].to_numpy())
    np.testing.assert_allclose(difference, frame.difference()[list(METRICS)].to_numpy())
    np.testing.assert_allclose(ratio, frame.ratio()[list(METRICS)].to_numpy())


def test_missing_values_are_their_own_group() -> None:
    assert list(group_labels([None, "", float("nan"), "x", 3])) == [
        "unknown",
        "unknown",
        "unknown",
        "x",
        "3",
    ]


def test_a_metric_undefined_for_a_group_is_null_and_left_out_of_its_disparity() -> None:
    """A group that spent nothing has no calibration ratio: null, and the disparity is taken
    over the groups that have one (as fairlearn does)."""
    actual = np.array([0.0, 0.0, 10.0, 30.0] * 3)
    predicted = np.array([5.0, 1.0, 10.0, 20.0] * 3)
    found = audit(actual, predicted, {"g": ["a", "a", "b", "c"] * 3}, bootstrap=20)

    groups = {g["group"]: g for g in found["attributes"]["g"]["groups"]}
    calibration = found["attributes"]["g"]["disparities"]["calibration_ratio"]
    assert groups["a"]["calibration_ratio"] is None
    assert calibration["difference"] == pytest.approx(1.0 - 20 / 30)
    assert calibration["ratio"] == pytest.approx((20 / 30) / 1.0)
