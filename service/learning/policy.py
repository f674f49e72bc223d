"""When a challenger replaces the champion: better ranking by a margin, calibration no worse.

Ranking alone is not enough: a model can order customers better and still misstate how much
they will spend, and budgets are set on the amounts. So the challenger must beat the champion's
normalised Gini by ``min_gini_gain`` and be no worse (within ``calibration_tolerance``) on
decile MAPE and on the absolute aggregate revenue error, all on the same time-later holdout.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Verdict:
    promote: bool
    reasons: list[str]


@dataclass(frozen=True)
class PromotionPolicy:
    min_gini_gain: float
    calibration_tolerance: float

    def decide(self, champion: Mapping[str, Any], challenger: Mapping[str, Any]) -> Verdict:
        """Each check with its numbers, passed or not: the reasons are the audit trail."""
        checks = [self._gini(champion, challenger), *self._calibration(champion, challenger)]
        return Verdict(all(passed for passed, _ in checks), [reason for _, reason in checks])

    def _gini(self, champion: Mapping[str, Any], challenger: Mapping[str, Any]) -> tuple[bool, str]:
        old, new = champion["normalized_gini"], challenger["normalized_gini"]
        gain = new - old
        passed = gain >= self.min_gini_gain
        verb = "beats" if passed else "does not beat"
        return passed, (
            f"normalised Gini {new:.4f} against {old:.4f} ({gain:+.4f}) {verb} the required "
            f"gain of {self.min_gini_gain:+.4f}"
        )

    def _calibration(
        self, champion: Mapping[str, Any], challenger: Mapping[str, Any]
    ) -> list[tuple[bool, str]]:
        checks = []
        for name, key, absolute in (
            ("decile MAPE", "decile_mape", False),
            ("aggregate revenue error", "aggregate_revenue_error", True),
        ):
            old, new = champion[key], challenger[key]
            old_size, new_size = (abs(old), abs(new)) if absolute else (old, new)
            passed = new_size <= old_size + self.calibration_tolerance
            label = f"|{name}|" if absolute else name
            verdict = "no worse than" if passed else "worse than"
            checks.append(
                (passed, f"{label} {new_size:.4f} is {verdict} the champion's {old_size:.4f}")
            )
        return checks
