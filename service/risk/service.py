"""Risk flags of a customer now, from the portrait's stored day aggregates (the score computes
its own, point in time, from the events it reads: ``service.scoring.engine``)."""

from __future__ import annotations

from datetime import datetime

import pandas as pd

from service.ml.activity import day_number
from service.risk.flags import RiskRules, risk_flags
from service.risk.schemas import RiskFlagRead


def current_flags(
    days: pd.DataFrame, customer_id: str, rules: RiskRules, now: datetime
) -> list[RiskFlagRead]:
    """The customer's flags as of ``now``'s UTC day, from their stored day aggregates
    (``days``: the events the worker has applied)."""
    flags = risk_flags(days, day_number(now), rules).get(customer_id, [])
    return [RiskFlagRead.model_validate(flag) for flag in flags]
