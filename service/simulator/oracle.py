"""The ground-truth oracle: each simulated customer's expected orders and spend in a window, from
their true latent parameters (rate, dropout, lifetime, spend level) and the shop's seasonality. No
model can know more about a customer than this, so it is the ceiling for every accuracy measure.

The shop writes it for its own future window into ``truth.csv``; the backtest asks it for any
window inside the simulated span."""

from __future__ import annotations

import math
from datetime import UTC, datetime, time

import numpy as np
import pandas as pd

from service.simulator.calendar import daily_multipliers
from service.simulator.config import ShopConfig


def expected_orders(
    config: ShopConfig,
    start: float,
    horizon_days: int,
    *,
    rate: np.ndarray,
    dropout: np.ndarray,
    acquired: np.ndarray,
    death: np.ndarray,
    shifted: np.ndarray,
) -> np.ndarray:
    """Expected orders in the ``horizon_days`` whole days after ``start`` (a day number since the
    shop's first day, fractional for a time inside a day), given whether each customer is alive
    at ``start`` (the simulator knows; lifetimes are memoryless, so the rest is the dropout rate).
    ``shifted`` marks the customers of the channel that ``config.shift`` affects."""
    first = math.ceil(start)
    days = np.arange(first, first + horizon_days)
    multipliers = daily_multipliers(config.start, int(days.max()) + 1, config.seasons)[days]
    survival = np.exp(-dropout[:, None] * (days[None, :] + 0.5 - start))
    intensity = multipliers[None, :] * survival
    if config.shift is not None:
        after = days >= config.shift.day
        intensity = intensity * np.where(shifted[:, None] & after[None, :], config.shift.factor, 1)
    alive = (acquired <= start) & (death > start)
    expected: np.ndarray = np.where(alive, rate * intensity.sum(axis=1), 0.0)
    return expected


def expected_spend(
    truth: pd.DataFrame, config: ShopConfig, as_of: datetime, horizon_days: int
) -> pd.Series:
    """Expected spend in (as_of, as_of + horizon] per customer of ``truth.csv`` (indexed by
    customer_id); 0 for customers not yet acquired or already gone."""
    origin = datetime.combine(config.start, time.min, UTC)
    start = (as_of - origin).total_seconds() / 86_400
    shifted = (
        (truth["acquisition_channel"] == config.shift.channel).to_numpy()
        if config.shift is not None
        else np.zeros(len(truth), dtype=bool)
    )
    orders = expected_orders(
        config,
        start,
        horizon_days,
        rate=truth["purchase_rate"].to_numpy(),
        dropout=truth["dropout_rate"].to_numpy(),
        acquired=truth["acquired_day"].to_numpy(),
        death=truth["death_day"].to_numpy(),
        shifted=shifted,
    )
    mean_order = truth["mean_order_value"].to_numpy() * (1 - config.zero_value_share)
    return pd.Series(orders * mean_order, index=truth["customer_id"].to_numpy())
