"""RFM in the BTYD sense, checked against values worked out by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from service.ml.rfm import RfmSummary, rfm_summary

T0 = datetime(2025, 1, 1, 9, tzinfo=UTC)


def test_orders_on_one_day_are_one_purchase_occasion() -> None:
    purchases = [
        (T0, Decimal("10")),
        (T0 + timedelta(hours=5), Decimal("5")),  # same day as the first
        (T0 + timedelta(days=7), Decimal("20")),
        (T0 + timedelta(days=7, hours=1), Decimal("10")),
        (T0 + timedelta(days=21), Decimal("12")),
    ]

    summary = rfm_summary(purchases, as_of=T0 + timedelta(days=30))

    # Repeat days: day 7 (30.00) and day 21 (12.00).
    assert summary == RfmSummary(
        frequency=2, recency_days=21, age_days=30, monetary_value=Decimal("21")
    )


def test_one_time_buyer_and_no_buyer() -> None:
    assert rfm_summary([(T0, Decimal("99"))], as_of=T0 + timedelta(days=3)) == RfmSummary(
        frequency=0, recency_days=0, age_days=3, monetary_value=Decimal(0)
    )
    assert rfm_summary([], as_of=T0) is None


def test_purchases_after_the_observation_time_are_ignored() -> None:
    purchases = [(T0, Decimal("1")), (T0 + timedelta(days=10), Decimal("2"))]

    assert rfm_summary(purchases, as_of=T0 + timedelta(days=5)) == RfmSummary(
        frequency=0, recency_days=0, age_days=5, monetary_value=Decimal(0)
    )
    assert rfm_summary(purchases, as_of=T0 - timedelta(days=1)) is None
