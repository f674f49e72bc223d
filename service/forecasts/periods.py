"""Calendar periods (days, Monday-to-Sunday weeks, months) over a run of days, and sums over them.

Days are UTC days numbered from 1970-01-01 (``service.ml.activity.day_number``): the forecast is
computed per day and only then summed into the periods asked for, so every granularity adds up to
the same totals. The first and last periods may be partial; each says how many days it holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal

import numpy as np

from service.ml.activity import EPOCH

Granularity = Literal["day", "week", "month"]


@dataclass(frozen=True)
class Periods:
    starts: list[date]  # first day of each period
    ends: list[date]  # last day of each period (inclusive)
    index: np.ndarray  # (days,) the period of each day

    def __len__(self) -> int:
        return len(self.starts)

    def days(self) -> np.ndarray:
        """(periods,) days in each period."""
        counts: np.ndarray = np.bincount(self.index, minlength=len(self))
        return counts

    def sum(self, daily: np.ndarray) -> np.ndarray:
        """Per-period sums of ``daily`` ((days,) or (days, k)) → (periods,) or (periods, k)."""
        out = np.zeros((len(self), *daily.shape[1:]))
        np.add.at(out, self.index, daily)
        return out


def day_date(day: int) -> date:
    return EPOCH + timedelta(days=int(day))


def weekday(days: np.ndarray) -> np.ndarray:
    """Monday = 0 of each day number (1970-01-01 was a Thursday)."""
    found: np.ndarray = (np.asarray(days, dtype=np.int64) + 3) % 7
    return found


def periods(first_day: int, days: int, granularity: Granularity) -> Periods:
    """The periods of ``granularity`` covering the ``days`` days from ``first_day``."""
    dates = [day_date(first_day + k) for k in range(days)]
    keys = [_key(d, granularity) for d in dates]
    index = np.zeros(days, dtype=np.int64)
    starts: list[date] = []
    ends: list[date] = []
    for k, (d, key) in enumerate(zip(dates, keys, strict=True)):
        if k == 0 or key != keys[k - 1]:
            starts.append(d)
            ends.append(d)
        ends[-1] = d
        index[k] = len(starts) - 1
    return Periods(starts, ends, index)


def _key(d: date, granularity: Granularity) -> tuple[int, int]:
    if granularity == "day":
        return d.toordinal(), 0
    if granularity == "week":
        return (d - timedelta(days=d.weekday())).toordinal(), 0
    return d.year, d.month
