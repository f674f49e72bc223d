"""The ground-truth oracle: each simulated customer's expected spend in a window, from their true
latent parameters (rate, dropout, lifetime, spend level) and the shop's seasonality. No model can
know more about a customer than this, so it is the ceiling for every accuracy measure."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

from service.simulator.calendar import daily_multipliers
from service.simulator.config import ShopConfig


def expected_spend(
    truth: pd.DataFrame, config: ShopConfig, cutoff: date, horizon_days: int
) -> pd.Series:
    """Expected spend in (cutoff, cutoff + horizon] per customer (indexed by customer_id), given
    whether each is alive at the cut-off (the simulator knows); 0 for customers not yet acquired."""
    start = (cutoff - config.start).days
    days = np.arange(start, start + horizon_days)
    multipliers = daily_multipliers(config.start, int(days.max()) + 1)[days]
    rate = truth["purchase_rate"].to_numpy()
    dropout = truth["dropout_rate"].to_numpy()
    death = truth["death_day"].to_numpy()
    acquired = truth["acquired_day"].to_numpy()
    survival = np.exp(-dropout[:, None] * np.maximum(days[None, :] + 0.5 - start, 0))
    intensity = multipliers[None, :] * survival
    if config.shift is not None:
        shifted = (truth["acquisition_channel"] == config.shift.channel).to_numpy()
        factor = np.where(
            shifted[:, None] & (days[None, :] >= config.shift.day), config.shift.factor, 1
        )
        intensity = intensity * factor
    known_alive = (acquired <= start) & (death > start)
    orders = np.where(known_alive, rate * intensity.sum(axis=1), 0.0)
    mean_order = truth["mean_order_value"].to_numpy() * (1 - config.zero_value_share)
    return pd.Series(orders * mean_order, index=truth["customer_id"].to_numpy())
