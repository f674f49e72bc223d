"""Risk flags of a customer now, from the portrait's stored day aggregates (the score computes
its own, point in time, from the events it reads: ``service.scoring.engine``)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from service.ml.activity import day_number
from service.risk import repository
from service.risk.flags import RiskRules, risk_flags
from service.risk.schemas import RiskFlagRead


def current_flags(
    session: Session, customer_id: str, rules: RiskRules, now: datetime
) -> list[RiskFlagRead]:
    """The customer's flags as of ``now``'s UTC day, from the events the worker has applied."""
    today = day_number(now)
    days = repository.days_until(session, [customer_id], today)
    flags = risk_flags(days, today, rules).get(customer_id, [])
    return [RiskFlagRead.model_validate(flag) for flag in flags]
