"""The promotion rule on its own: Gini gain by a margin, calibration no worse."""

from __future__ import annotations

import pytest

from service.learning.policy import PromotionPolicy

CHAMPION = {"normalized_gini": 0.50, "decile_mape": 0.30, "aggregate_revenue_error": -0.10}


def metrics(gini: float, mape: float, error: float) -> dict[str, float]:
    return {"normalized_gini": gini, "decile_mape": mape, "aggregate_revenue_error": error}


@pytest.mark.parametrize(
    ("challenger", "promote", "failing"),
    [
        (metrics(0.52, 0.25, 0.05), True, []),
        (metrics(0.504, 0.25, 0.05), False, ["normalised Gini"]),  # gain below the margin
        (metrics(0.60, 0.31, 0.05), False, ["decile MAPE"]),
        (metrics(0.60, 0.20, 0.11), False, ["|aggregate revenue error|"]),  # |0.11| > |-0.10|
        (metrics(0.60, 0.20, 0.10), True, []),  # the same size of error, other side: no worse
        (metrics(0.40, 0.50, 0.50), False, ["normalised Gini", "decile MAPE", "|aggregate"]),
    ],
)
def test_promotion_needs_the_gini_margin_and_calibration_no_worse(
    challenger: dict[str, float], promote: bool, failing: list[str]
) -> None:
    verdict = PromotionPolicy(min_gini_gain=0.005, calibration_tolerance=0.0).decide(
        CHAMPION, challenger
    )
    assert verdict.promote is promote
    assert len(verdict.reasons) == 3  # every check is recorded, passed or not
    failed = [r for r in verdict.reasons if " does not beat " in r or " is worse than " in r]
    assert len(failed) == len(failing)
    for reason, start in zip(failed, failing, strict=True):
        assert reason.startswith(start)


def test_tolerance_lets_calibration_be_slightly_worse() -> None:
    challenger = metrics(0.60, 0.31, -0.105)
    assert not PromotionPolicy(0.005, 0.0).decide(CHAMPION, challenger).promote
    assert PromotionPolicy(0.005, 0.02).decide(CHAMPION, challenger).promote


def test_reasons_state_the_numbers() -> None:
    verdict = PromotionPolicy(0.01, 0.0).decide(CHAMPION, metrics(0.55, 0.2, 0.0))
    assert verdict.reasons[0] == (
        "normalised Gini 0.5500 against 0.5000 (+0.0500) beats the required gain of +0.0100"
    )
    assert verdict.reasons[1] == "decile MAPE 0.2000 is no worse than the champion's 0.3000"
