"""The risk-flag function on hand-built day aggregates, with the numbers worked out by hand:
the windows' edges, the thresholds, the reasons, and one call for many customers agreeing with
one call per customer."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from service.config import Settings
from service.ml.activity import EVENT_COLUMNS, ITEM_COLUMNS, MONEY_UNITS, day_number
from service.ml.examples import EventLog
from service.risk.flags import RiskFlag, RiskRules, risk_flags, risk_measures

TODAY = 20_000  # the day scored, in days since 1970-01-01
RULES = RiskRules()  # window 30, history 365, min history 90, ratio 5, min spend 500, 2 refunds


def _days(*rows: tuple[str, int, int, str, int]) -> pd.DataFrame:
    """(customer, age in days before TODAY, orders, spend, refunds) -> day aggregates."""
    return pd.DataFrame(
        [
            (customer, TODAY - age, orders, int(float(spend) * MONEY_UNITS), refunds)
            for customer, age, orders, spend, refunds in rows
        ],
        columns=["customer_id", "day", "orders", "spend_units", "refunds"],
    )


def _steady(customer: str, amount: str = "100.00") -> list[tuple[str, int, int, str, int]]:
    """An order every 30 days, the first 329 days ago: 10 orders in the earlier history (ages
    329, 299, ..., 59), which is 329 - 30 + 1 = 300 days long."""
    return [(customer, age, 1, amount, 0) for age in range(329, 58, -30)]


def test_a_spend_spike_is_measured_against_the_customers_own_usual_spend() -> None:
    days = _days(*_steady("a"), ("a", 2, 1, "1250.00", 0))

    flags = risk_flags(days, TODAY, RULES)

    # usual: 1,000.00 over 300 days = 100.00 per 30 days; 1,250.00 / 100.00 = 12.5
    assert flags == {
        "a": [
            {
                "flag": "spend_spike",
                "reason": "spent 1,250.00 USD in the last 30 days, 12.5 times their usual 100.00 "
                "per 30 days over the previous 300 days",
                "window_days": 30,
                "history_days": 300,
                "recent": 1250.0,
                "usual": 100.0,
                "ratio": 12.5,
            }
        ]
    }


def test_steady_small_new_and_merely_large_customers_are_not_flagged() -> None:
    days = _days(
        *_steady("steady"),
        ("steady", 2, 1, "100.00", 0),
        *_steady("small", "20.00"),
        ("small", 2, 1, "499.99", 0),  # 25 times their usual, but under CLV_RISK_MIN_SPEND
        ("new", 60, 1, "50.00", 0),  # 31 days of history, under CLV_RISK_MIN_HISTORY_DAYS
        ("new", 1, 1, "5000.00", 0),
        *_steady("big", "1000.00"),
        ("big", 2, 1, "4999.99", 0),  # just under 5 times their usual 1,000.00
    )

    assert risk_flags(days, TODAY, RULES) == {}
    assert risk_flags(days, TODAY, RiskRules(spend_spike_ratio=4.9))["big"][0]["ratio"] == 5.0


def test_the_window_ends_on_the_day_scored_and_later_days_are_not_seen() -> None:
    days = _days(*_steady("a"), ("a", 30, 1, "1250.00", 0), ("a", -1, 1, "1250.00", 0))

    measures = risk_measures(days, TODAY, RULES).loc["a"]

    assert measures["recent_spend"] == 0  # age 30 is the day before the window; age -1 is later
    assert measures["history_days"] == 300
    assert measures["usual_spend"] == pytest.approx(2250.0 * 30 / 300)
    assert risk_flags(days, TODAY + 1, RULES)["a"][0]["recent"] == 1250.0  # a day later


def test_a_dormant_customer_who_returns_big_has_no_usual_spend_and_no_ratio() -> None:
    days = _days(("d", 700, 1, "80.00", 0), ("d", 3, 1, "900.00", 0))

    [flag] = risk_flags(days, TODAY, RULES)["d"]

    assert flag["history_days"] == 365  # the first order is older than the earlier history
    assert flag["usual"] == 0.0
    assert flag["ratio"] is None
    assert flag["reason"] == (
        "spent 900.00 USD in the last 30 days, after nothing in the previous 365 days"
    )


def test_a_refund_spike_is_measured_against_the_customers_own_refund_rate() -> None:
    days = _days(
        *_steady("r"),
        ("r", 100, 0, "0", 1),  # 1 refund per 10 orders before
        ("r", 20, 2, "200.00", 0),
        ("r", 5, 0, "0", 3),
    )

    [flag] = risk_flags(days, TODAY, RULES)["r"]

    assert flag == {
        "flag": "refund_spike",
        "reason": "3 refunds against 2 orders in the last 30 days (1.50 per order), against their "
        "usual 0.10 per order (1 refund, 10 orders in the previous 300 days)",
        "window_days": 30,
        "history_days": 300,
        "recent": 1.5,
        "usual": 0.1,
        "ratio": 15.0,
    }


def test_few_refunds_or_a_usual_refund_rate_are_not_flagged_and_new_refunders_are() -> None:
    days = _days(
        *_steady("one"),
        ("one", 5, 1, "100.00", 1),  # a single refund is under CLV_RISK_MIN_REFUNDS
        *_steady("habit"),
        *[("habit", age, 0, "0", 1) for age in range(320, 50, -30)],  # refunds everything
        ("habit", 5, 2, "200.00", 2),
        *_steady("many"),
        ("many", 5, 10, "300.00", 2),  # 0.2 per order: a gap of 0.2, under 0.5
        ("fresh", 10, 0, "0", 2),  # no order ever: the window's orders count as one
    )

    flags = risk_flags(days, TODAY, RULES)

    assert list(flags) == ["fresh"]
    assert flags["fresh"][0]["recent"] == 2.0
    assert flags["fresh"][0]["reason"] == (
        "2 refunds and no orders in the last 30 days, with no orders before"
    )


def test_both_flags_at_once_spend_first() -> None:
    days = _days(*_steady("both"), ("both", 3, 2, "2000.00", 2))

    assert [f["flag"] for f in risk_flags(days, TODAY, RULES)["both"]] == [
        "spend_spike",
        "refund_spike",
    ]


def test_many_customers_at_once_are_flagged_as_each_alone() -> None:
    rng = np.random.default_rng(3)
    rows = []
    for customer in range(300):
        spiking = customer % 7 == 0
        for age in rng.choice(600, size=rng.integers(1, 25), replace=False):
            orders = int(rng.integers(0, 3))
            spend = orders * rng.gamma(2.0, 60.0) * (20 if spiking and age < 30 else 1)
            refunds = int(rng.random() < 0.3)
            rows.append((f"c{customer:03}", int(age), orders, f"{spend:.2f}", refunds))
    days = _days(*rows)

    together = risk_flags(days, TODAY, RULES)
    alone = {}
    for _, part in days.groupby("customer_id"):
        alone.update(risk_flags(part, TODAY, RULES))

    assert together == alone
    assert 10 < len(together) < 300  # some flagged, not everyone: the comparison means something


def test_flags_from_a_scores_events_aggregate_the_days_and_only_read_orders_and_refunds() -> None:
    """The scoring engine's path: its event log's aggregates (which it builds for the features
    anyway), then ``risk_flags`` as of the score's day."""
    as_of = datetime(2026, 6, 1, 12, tzinfo=UTC)

    def at(days_before: int, kind: str, amount: str) -> tuple[int, str, str, int, int]:
        seconds = int((as_of - timedelta(days=days_before)).timestamp())
        return (0, "e", kind, seconds, int(float(amount) * MONEY_UNITS))

    events = pd.DataFrame(
        [
            *(at(age, "purchase", "100.00") for age in range(329, 58, -30)),
            at(2, "view", "0"),
            at(2, "purchase", "700.00"),
            at(2, "purchase", "550.00"),
        ],
        columns=EVENT_COLUMNS,
    )

    def flags(frame: pd.DataFrame) -> dict[str, list[RiskFlag]]:
        days = EventLog(frame, pd.DataFrame(columns=ITEM_COLUMNS)).activity().days
        return risk_flags(days, day_number(as_of), RULES)

    [flag] = flags(events)["e"]

    assert (flag["recent"], flag["usual"], flag["ratio"]) == (1250.0, 100.0, 12.5)
    assert flags(events.iloc[:0]) == {}


def test_the_rules_come_from_clv_risk_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLV_RISK_SPEND_SPIKE_RATIO", "20")
    monkeypatch.setenv("CLV_RISK_MIN_REFUNDS", "3")
    monkeypatch.setenv("CLV_CURRENCY", "EUR")

    rules = RiskRules.from_settings(Settings(_env_file=None))  # type: ignore[call-arg]
    days = _days(*_steady("a"), ("a", 2, 1, "1250.00", 0))

    assert (rules.spend_spike_ratio, rules.min_refunds, rules.currency) == (20.0, 3, "EUR")
    assert risk_flags(days, TODAY, rules) == {}  # 12.5 times is under 20
    reason = risk_flags(days, TODAY, RiskRules(currency="EUR"))["a"][0]["reason"]
    assert reason.startswith("spent 1,250.00 EUR in the last 30 days")
