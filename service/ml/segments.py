"""RFM segments: a fixed, documented scheme over recency and frequency scores.

R (recency) scores the days since the last order: 5 for up to 30 days, 4 up to 60, 3 up to 120,
2 up to 240, 1 beyond. F (frequency) scores the orders: 5 for 10 or more, 4 for 5-9, 3 for 3-4,
2 for 2, 1 for 1. Segments, in order of precedence:

- ``prospect``: no order yet;
- ``champions``: R >= 4 and F >= 4;
- ``new``: R >= 4 and a single order;
- ``loyal``: R >= 3 and F >= 3;
- ``potential``: R >= 3 (recent, few orders);
- ``at_risk``: R <= 2 and F >= 3 (valuable, quiet for a while);
- ``hibernating``: R = 2;
- ``lost``: R = 1.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

SEGMENTS = ("prospect", "champions", "new", "loyal", "potential", "at_risk", "hibernating", "lost")
_RECENCY_LIMITS = (30, 60, 120, 240)  # days; score 5 at or under the first
_FREQUENCY_FLOORS = (1, 2, 3, 5, 10)  # orders; score 1 from the first


def rfm_segments(features: pd.DataFrame) -> pd.Series:
    """A segment name per row of ``features`` (needs orders_total, days_since_last_order)."""
    days = features["days_since_last_order"].to_numpy()
    orders = features["orders_total"].to_numpy()
    recency = 5 - np.searchsorted(np.array(_RECENCY_LIMITS), days, side="left")
    frequency = np.searchsorted(np.array(_FREQUENCY_FLOORS), orders, side="right")
    conditions = [
        orders == 0,
        (recency >= 4) & (frequency >= 4),
        (recency >= 4) & (orders == 1),
        (recency >= 3) & (frequency >= 3),
        recency >= 3,
        frequency >= 3,
        recency == 2,
    ]
    choices = list(SEGMENTS[:-1])
    return pd.Series(np.select(conditions, choices, default="lost"), index=features.index)
