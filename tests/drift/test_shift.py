"""``clv simulate``'s behaviour shift: drift is detected after it and not before.

The shop (tests/drift/conftest.py) seasons like a real one (a December peak, a June low,
Black Friday), so the shop-wide purchase rate moves by up to ~+17% between pre-shift moments on
its own; the checks before the shift run at three moments across that range. What must flag
the shift is the organic segment's purchase rate relative to the other channels, which seasons
do not move.
"""

from __future__ import annotations

import pytest

from service.drift.schemas import DriftReportRead
from service.drift.service import check_drift
from tests.drift.conftest import SHIFT_DAY, TRAINED_DAY, DriftShop, day

BEFORE = (345, 370, 399)
AFTER = (480, 539)
SHIFT_MOVES = ("orders_30d", "orders_90d", "spend_90d", "orders_trend")
"""Features the shift moves: organic customers' recent orders fall."""


def checked(shop: DriftShop, number: int) -> DriftReportRead:
    return check_drift(shop.factory, shop.settings, as_of=day(number), actor="test")


def organic(report: DriftReportRead) -> float:
    return next(
        s.excess_change
        for s in report.segments
        if (s.attribute, s.level) == ("acquisition_channel", "organic")
    )


def psi(report: DriftReportRead, feature: str) -> float:
    return next(f.psi for f in report.features if f.feature == feature)


@pytest.fixture(scope="module")
def before(drift_shop: DriftShop) -> list[DriftReportRead]:
    return [checked(drift_shop, number) for number in BEFORE]


@pytest.fixture(scope="module")
def after(drift_shop: DriftShop) -> list[DriftReportRead]:
    return [checked(drift_shop, number) for number in AFTER]


def test_no_drift_before_the_shift(before: list[DriftReportRead]) -> None:
    for report in before:
        assert not report.drifted, (report.as_of, report.reasons)
        assert report.reference.window_to == day(TRAINED_DAY)
        assert report.reference.customers > 1_000
        assert report.current.customers > 1_000
        assert all(abs(s.excess_change) < 0.2 for s in report.segments), report.segments
        assert report.score.psi < 0.05
        assert all(f.psi < 0.15 for f in report.features), report.features[:3]


def test_drift_after_the_shift_names_the_channel(after: list[DriftReportRead]) -> None:
    for report in after:
        assert report.as_of > day(SHIFT_DAY + 60)
        assert report.drifted
        top = report.segments[0]
        assert (top.attribute, top.level, top.drifted) == ("acquisition_channel", "organic", True)
        assert top.excess_change < -0.4
        assert top.z < -6
        assert any("acquisition_channel=organic" in reason for reason in report.reasons)
        assert [s.level for s in report.segments if s.drifted] == ["organic"]


def test_the_shift_moves_rates_scores_and_recent_orders(
    before: list[DriftReportRead], after: list[DriftReportRead]
) -> None:
    """Below their thresholds at this size of shift (a fifth of the repeat orders of a third of
    the customers, diluted by the first orders of new ones), but moved beyond any pre-shift
    value: the shop's purchase rate down, the predicted spend's distribution and the features of
    recent orders apart (measured: score PSI 0.14-0.17 after, at most 0.03 before)."""
    rate_before = [r.purchase_rate.change or 0.0 for r in before]
    for report in after:
        assert (report.purchase_rate.change or 0.0) < min(rate_before) - 0.2
        assert report.score.psi > 3 * max(r.score.psi for r in before)
        assert report.score.ks > 1.5 * max(r.score.ks for r in before)
        for feature in SHIFT_MOVES:
            assert psi(report, feature) > max(psi(r, feature) for r in before), feature
