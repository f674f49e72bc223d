"""SQL for forecasts: the stored scores they start from and the stored forecasts (``reports``
rows of kind ``forecast``)."""

from __future__ import annotations

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from service.reports.models import Report
from service.scoring.models import Score

KIND = "forecast"
SCORE_COLUMNS = ("customer_id", "as_of", "horizon_days", "expected_orders", "expected_order_value")


def stored_scores(session: Session) -> pd.DataFrame:
    """Every customer's current score (``SCORE_COLUMNS``), indexed by customer_id."""
    columns = [getattr(Score, name) for name in SCORE_COLUMNS]
    rows = session.execute(select(*columns)).all()
    frame = pd.DataFrame(rows, columns=list(SCORE_COLUMNS))
    return frame.set_index("customer_id")


def has_scores(session: Session) -> bool:
    return session.scalar(select(Score.customer_id).limit(1)) is not None


def forecast(session: Session, forecast_id: int) -> Report | None:
    report = session.get(Report, forecast_id)
    return report if report is not None and report.kind == KIND else None
