"""Seasonality: a purchase-intensity multiplier for every simulated day, with mean 1 over a year.

Weekly (weekends busier), yearly (a December peak, a June low) and promotion days (Black
Friday, Cyber Monday, a summer sale, the new-year sale).
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np

_WEEKDAY = np.array([0.9, 0.92, 0.95, 1.0, 1.05, 1.15, 1.08])  # Monday first


def _promotions(year: int) -> dict[date, float]:
    november_first = date(year, 11, 1)
    thanksgiving = november_first + timedelta(days=(3 - november_first.weekday()) % 7 + 21)
    black_friday = thanksgiving + timedelta(days=1)
    return {
        black_friday: 3.0,
        black_friday + timedelta(days=3): 2.2,  # Cyber Monday
        date(year, 7, 12): 1.8,
        date(year, 1, 2): 1.6,
    }


def _raw(dates: list[date]) -> np.ndarray:
    day_of_year = np.array([d.timetuple().tm_yday for d in dates], dtype=float)
    weekly = _WEEKDAY[[d.weekday() for d in dates]] / _WEEKDAY.mean()
    yearly = 1.0 + 0.25 * np.cos(2 * np.pi * (day_of_year - 355) / 365.25)
    promotions: dict[date, float] = {}
    for year in range(dates[0].year, dates[-1].year + 1):
        promotions.update(_promotions(year))
    multiplier: np.ndarray = weekly * yearly * np.array([promotions.get(d, 1.0) for d in dates])
    return multiplier


def daily_multipliers(start: date, days: int, seasons: bool = True) -> np.ndarray:
    """(days,) intensity multiplier of each day from ``start``; its mean over a year is 1, so a
    purchase rate keeps its meaning as a yearly average. Without ``seasons`` every day is 1: a
    shop where a change in behaviour is not mixed up with the time of year."""
    if not seasons:
        return np.ones(days)
    reference_year = [date(start.year, 1, 1) + timedelta(days=i) for i in range(365)]
    dates = [start + timedelta(days=i) for i in range(days)]
    normalised: np.ndarray = _raw(dates) / _raw(reference_year).mean()
    return normalised
