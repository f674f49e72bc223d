"""The shop's yearly season in the BTYD models: purchase rates that rise and fall with the
time of year.

BG/NBD and Pareto/NBD take a customer's purchase rate as constant in time, so a forecast whose
horizon holds a busier season than the history averages misses the level, and P(no order in
the horizon) with it (bench/real_data.py: the simulated shops' aggregate error and churn
calibration). Here a customer's purchases arrive at ``lambda * s(day)`` while alive, with one
yearly cycle ``s = 1 + c cos(angle) + d sin(angle)`` (mean 1 over a year, so lambda stays a
yearly average; ``angle`` the day of the year as the portrait's ``cutoff_season_*`` features
give it). Counted in *operational* time, ``u(t) = integral of s``, the purchases are the count
model's Poisson process again, so the fitted models are used unchanged on transformed
``t_x``, ``T`` and horizon (drop-out runs in operational time too: an approximation).

The cycle is fitted jointly with the count model by maximum likelihood: the operational-time
likelihood plus the log intensity at every repeat purchase (the change of variables). It is
kept only where a likelihood-ratio test against the constant rate rejects at 1% (two more
parameters: 2 * gain > 9.21) and the repeat purchases span half a year or more; otherwise the
model is the plain one. On Online Retail (9 and 7 months of history) no cycle passes; on the
simulated shops, whose rates peak in late December, it finds the peak.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import minimize

from service.ml.btyd.base import PurchaseCountFitter

YEAR = 365.25
MIN_SPAN_DAYS = 182
"""Repeat purchases spanning less than half a year cannot tell a season from a trend."""
CRITICAL = 9.21
"""chi-squared with two degrees of freedom at 1%: twice the log-likelihood gain a cycle needs."""
_BOUND = 0.5  # each of c and d: the intensity stays above 1 - sqrt(2) / 2
_PHASES = 12


def angle_of_day(day: np.ndarray | int) -> np.ndarray:
    """The yearly angle of whole days since 1970, as ``service.ml.features`` computes it."""
    return np.asarray(2 * np.pi * (np.asarray(day, dtype=float) % YEAR) / YEAR)


@dataclass(frozen=True)
class Season:
    """A yearly cycle of purchase intensity ``1 + c cos(angle) + d sin(angle)``."""

    c: float
    d: float
    statistic: float = 0.0  # the likelihood-ratio statistic it was kept on

    @property
    def amplitude(self) -> float:
        return math.hypot(self.c, self.d)

    @property
    def peak_day_of_year(self) -> int:
        """The day of the year (1 = 1 January) when purchases run fastest."""
        day = (math.atan2(self.d, self.c) % (2 * np.pi)) * YEAR / (2 * np.pi)
        # angle 0 is day 0 since 1970 (1 January 1970) modulo the mean year
        return int(day) % 365 + 1

    def summary(self) -> dict[str, float]:
        """What the model info shows of it."""
        return {
            "peak_day_of_year": self.peak_day_of_year,
            "amplitude": round(self.amplitude, 4),
            "likelihood_ratio": round(self.statistic, 2),
        }

    def intensity(self, angle: np.ndarray) -> np.ndarray:
        return np.asarray(1 + self.c * np.cos(angle) + self.d * np.sin(angle))

    def elapsed(self, end: np.ndarray, days: np.ndarray) -> np.ndarray:
        """Operational days in the ``days`` (real) ending at yearly angle ``end``."""
        start = end - 2 * np.pi * np.asarray(days, dtype=float) / YEAR
        scale = YEAR / (2 * np.pi)
        swing = self.c * (np.sin(end) - np.sin(start)) - self.d * (np.cos(end) - np.cos(start))
        return np.asarray(days + scale * swing)

    def times(
        self, recency: np.ndarray, age: np.ndarray, cutoff: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """(t_x, T) in operational days: the first purchase ``age`` days before the cut-off
        (yearly angle ``cutoff``), the last ``recency`` days after the first."""
        first = cutoff - 2 * np.pi * age / YEAR
        last = first + 2 * np.pi * recency / YEAR
        return self.elapsed(last, recency), self.elapsed(cutoff, age)

    def horizon(self, cutoff: np.ndarray, days: float) -> np.ndarray:
        """Operational days in the ``days`` after a cut-off at yearly angle ``cutoff``."""
        return self.elapsed(cutoff + 2 * np.pi * days / YEAR, np.full(len(cutoff), float(days)))


def cutoff_angle(features: pd.DataFrame) -> np.ndarray:
    """Each row's cut-off as a yearly angle, from the portrait's ``cutoff_season_*``."""
    return np.asarray(
        np.arctan2(
            features["cutoff_season_sin"].to_numpy(dtype=float),
            features["cutoff_season_cos"].to_numpy(dtype=float),
        )
    )


def fit_season(
    plain: PurchaseCountFitter,
    data: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    repeat_days: np.ndarray,
) -> tuple[PurchaseCountFitter, Season] | None:
    """The count model refitted with a yearly cycle, or None where the cycle does not pass the
    test (module docstring). ``plain``: the model fitted without one on the same customers;
    ``data``: their (x, recency, age, cut-off angle); ``repeat_days``: the day (since 1970) of
    every repeat purchase day of theirs."""
    if len(repeat_days) < 2 or np.ptp(repeat_days) < MIN_SPAN_DAYS:
        return None
    frame = pd.DataFrame(dict(zip("xrac", data, strict=True)))
    grouped = frame.groupby(list("xrac")).size().reset_index(name="weight")
    x, recency, age, cutoff = (grouped[k].to_numpy(dtype=float) for k in "xrac")
    weights = grouped["weight"].to_numpy(dtype=float)
    day, count = np.unique(repeat_days, return_counts=True)
    repeats, counts = angle_of_day(day), count.astype(float)
    total = weights.sum()
    plain_ll = plain.mean_log_likelihood_

    def mean_ll(params: np.ndarray, season: Season) -> float:
        t_x, T = season.times(recency, age, cutoff)
        with np.errstate(all="ignore"):
            ll = (weights * plain.log_likelihood(params, x, t_x, T)).sum()
            jacobian = (counts * np.log(season.intensity(repeats))).sum()
        value = float((ll + jacobian) / total)
        return value if np.isfinite(value) else -np.inf

    params = plain._params
    starts = [
        Season(0.2 * math.cos(phase), 0.2 * math.sin(phase))
        for phase in np.linspace(0, 2 * np.pi, _PHASES, endpoint=False)
    ]
    start = max(starts, key=lambda season: mean_ll(params, season))

    def objective(theta: np.ndarray) -> float:
        value = mean_ll(np.exp(theta[:-2]), Season(theta[-2], theta[-1]))
        return -value if np.isfinite(value) else 1e12

    result = minimize(
        objective,
        np.concatenate([np.log(params), [start.c, start.d]]),
        method="L-BFGS-B",
        bounds=[(-12.0, 12.0)] * len(params) + [(-_BOUND, _BOUND)] * 2,
    )
    statistic = 2 * total * (-float(result.fun) - plain_ll)
    if not np.isfinite(result.fun) or statistic <= CRITICAL:
        return None
    fitted = type(plain)()
    fitted.params_ = dict(zip(plain.param_names, np.exp(result.x[:-2]).tolist(), strict=True))
    fitted.mean_log_likelihood_ = -float(result.fun)
    return fitted, Season(float(result.x[-2]), float(result.x[-1]), float(statistic))
