"""SQL for risk flags: the day aggregates they are computed from."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from service.ml.activity import EPOCH
from service.portrait.models import CustomerDay

COUNTERS = ("orders", "spend_units", "refunds")
"""The day counters the flags read."""


def days_until(session: Session, customer_ids: Sequence[str], last_day: int) -> pd.DataFrame:
    """The customers' stored day aggregates up to ``last_day`` (both days since 1970-01-01):
    customer_id, day and ``COUNTERS``, of the days with an order or a refund. All of them, not
    only the flags' windows: the oldest order tells how long the customer has been buying."""
    query = select(
        CustomerDay.customer_id,
        CustomerDay.day,
        *(getattr(CustomerDay, name) for name in COUNTERS),
    ).where(
        CustomerDay.customer_id.in_(customer_ids),
        CustomerDay.day <= EPOCH + timedelta(days=last_day),
        (CustomerDay.orders > 0) | (CustomerDay.refunds > 0),
    )
    days = pd.DataFrame(session.execute(query).all(), columns=["customer_id", "day", *COUNTERS])
    days["day"] = [(day - EPOCH).days for day in days["day"]]
    return days.astype({"day": "int64"})
