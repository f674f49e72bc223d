"""The forecast backtest on a small simulated shop: trained at a cut-off, judged on the weeks
after it beside the seasonal-naive baseline."""

from __future__ import annotations

import math
from datetime import timedelta

import pytest

from service.errors import InvalidRequestError
from service.forecasts.backtest import backtest, cut_off
from service.simulator.memory import SMALL_SHOP, end_of_observation, shop_log
from tests.conftest import FAST


@pytest.mark.slow
def test_the_backtest_reports_finite_errors_and_the_intervals_coverage() -> None:
    log, profiles, sources = shop_log(SMALL_SHOP)
    as_of = end_of_observation(SMALL_SHOP) - timedelta(weeks=8)

    report = backtest(log, profiles, sources, as_of, 8, FAST, simulations=200)

    assert report["as_of"] == cut_off(as_of).isoformat()
    assert cut_off(as_of).weekday() == 6  # a Sunday: the weeks compared are calendar weeks
    assert len(report["rows"]) == 8
    assert report["baseline"].startswith("the mean of the last")  # 400 days: no year earlier
    for measure in ("revenue", "orders"):
        metrics = report["metrics"][measure]
        for name in ("mape", "baseline_mape", "total_error", "baseline_total_error"):
            assert math.isfinite(metrics[name]), name
        assert 0.0 <= metrics["coverage_80"] <= 1.0
        assert metrics["mape"] < 1.0  # a forecast, not noise
    first = report["rows"][0]["revenue"]
    assert first["actual"] == pytest.approx(first["actual_existing"] + first["actual_new"])
    with pytest.raises(InvalidRequestError, match="needs them up to"):
        backtest(log, profiles, sources, as_of + timedelta(days=400), 8, FAST)
