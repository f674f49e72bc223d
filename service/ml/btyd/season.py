"""The shop's yearly season in Pareto/NBD: purchase rates that rise and fall with the time of
year, while lifetimes run in calendar days.

Pareto/NBD takes a customer's purchase rate as constant in time, so a forecast whose horizon
holds a busier season than the history averages misses the level, and P(no order in the
horizon) with it (bench/season.py). Here a customer's purchases arrive at ``lambda * s(day)``
while alive, with one yearly cycle ``s = 1 + c cos(angle) + d sin(angle)`` (mean 1 over a year,
so lambda stays a yearly average; ``angle`` the day of the year as the portrait's
``cutoff_season_*`` features give it), and they drop out at a constant rate ``mu`` per calendar
day, as in the plain model. With the operational time ``U(t)``, the integral of ``s``, the
gamma mixtures still integrate in closed form over lambda and mu; what is left, the moment of
dropping out, is one integral over calendar days per customer, taken by Gauss-Legendre
quadrature (``service.ml.btyd.paretonbd.quadrature_rule``). With ``c = d = 0`` every expression
is the plain model's.

The cycle is fitted jointly with the count model by maximum likelihood: the likelihood above
plus the log intensity at every repeat purchase (the purchase times' density). It is kept only
where a likelihood-ratio test against the constant rate rejects at 1% (two more parameters:
2 * gain > 9.21) and the repeat purchases span half a year or more; otherwise the model is the
plain one. On Online Retail (9 and 7 months of history) no cycle passes; on the simulated
shops, whose rates peak in late December, it finds the peak.

BG/NBD gets no season: its customers drop out at purchases, so a season in the purchases moves
its drop-outs with them, and on the simulated shops its seasonal forecasts were worse than its
plain ones (``docs/decisions.md``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Self

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from scipy.special import gammaln

from service.ml.btyd.base import PurchaseCountFitter
from service.ml.btyd.paretonbd import (
    ParetoNBDFitter,
    log_dropped_out,
    quiet_if_alive,
    span_nodes,
)

YEAR = 365.25
MIN_SPAN_DAYS = 182
"""Repeat purchases spanning less than half a year cannot tell a season from a trend."""
CRITICAL = 9.21
"""chi-squared with two degrees of freedom at 1%: twice the log-likelihood gain a cycle needs."""
_BOUND = 0.5  # each of c and d: the intensity stays above 1 - sqrt(2) / 2
_PHASES = 12
_TO_DAYS = YEAR / (2 * np.pi)


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
        day = (math.atan2(self.d, self.c) % (2 * np.pi)) * _TO_DAYS
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


class _Swing:
    """Calendar days counted from a yearly angle ``origin``, with the parts of their
    operational time that do not depend on the cycle's (c, d): fitting re-evaluates only
    ``operational``."""

    def __init__(self, origin: np.ndarray, days: np.ndarray) -> None:
        origin = np.asarray(origin, dtype=float)
        if np.ndim(days) > np.ndim(origin):  # several days (columns) per customer (rows)
            origin = origin[:, None]
        self.days = days
        self.angle = origin + days / _TO_DAYS
        self.sin = np.sin(self.angle) - np.sin(origin)
        self.cos = np.cos(self.angle) - np.cos(origin)

    def operational(self, season: Season) -> np.ndarray:
        return np.asarray(self.days + _TO_DAYS * (season.c * self.sin - season.d * self.cos))


class _Span:
    """Quadrature nodes over calendar days ``start`` to ``end`` (per customer), counted from
    the yearly angle ``origin``."""

    def __init__(self, origin: np.ndarray, start: np.ndarray, end: np.ndarray) -> None:
        days, self.log_weights = span_nodes(start, end)
        self.swing = _Swing(origin, days)


class _History:
    """What the likelihood reads of each customer: ``x`` repeat purchases, the last ``t_x``
    and the cut-off ``T`` calendar days after the first purchase, and the cut-off's yearly
    angle."""

    def __init__(self, x: np.ndarray, t_x: np.ndarray, T: np.ndarray, cutoff: np.ndarray) -> None:
        first = cutoff - T / _TO_DAYS
        self.x, self.T = x, T
        self.whole = _Swing(first, T)
        self.quiet = _Span(first, t_x, T)  # where the customer may have dropped out


@dataclass(frozen=True)
class _Ahead:
    """The horizon after each customer's cut-off (one row each): its quadrature nodes' calendar
    days, intensity, operational days and weights; the horizon in calendar and operational
    days; and the posterior rates' scales of a customer alive at the cut-off, alpha + U(T) and
    beta + T."""

    days: np.ndarray
    intensity: np.ndarray
    clock: np.ndarray
    weights: np.ndarray
    horizon: np.ndarray
    clock_at_end: np.ndarray
    exposure: np.ndarray
    lasted: np.ndarray


def _log_likelihood(
    params: np.ndarray, season: Season, history: _History
) -> tuple[np.ndarray, np.ndarray]:
    """Each customer's log-likelihood (without the purchase times' density) and log P(alive at
    the cut-off): alive through T, ``(alpha + U(T))^-(r+x) (beta / (beta+T))^s``, or dropped out
    at tau between t_x and T, ``integral (alpha + U(tau))^-(r+x) s/beta (beta/(beta+tau))^(s+1)``;
    times Gamma(r+x) alpha^r / Gamma(r)."""
    r, alpha, s, beta = params
    x, T = history.x, history.T
    common = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
    alive = -(r + x) * np.log(alpha + history.whole.operational(season)) + s * np.log(
        beta / (beta + T)
    )
    tau = history.quiet.swing
    died = log_dropped_out(params, x, tau.days, tau.operational(season), history.quiet.log_weights)
    total = np.logaddexp(alive, died)
    return np.asarray(common + total), np.asarray(alive - total)


class SeasonalParetoNBD(PurchaseCountFitter):
    """Pareto/NBD with the ``season`` in its purchases, read at the cut-offs whose yearly
    angles are ``cutoff`` (one per customer, in the order of the data its methods get). Its
    parameters come from ``fit_season``."""

    param_names = ParetoNBDFitter.param_names

    def __init__(self, params: dict[str, float], season: Season, cutoff: np.ndarray) -> None:
        super().__init__()
        self.params_ = dict(params)
        self.season, self.cutoff = season, np.asarray(cutoff, dtype=float)

    def fit(self, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> Self:
        raise TypeError("a seasonal Pareto/NBD is fitted by fit_season, with its cycle")

    def log_likelihood(self, params: np.ndarray, *data: np.ndarray) -> np.ndarray:
        x, t_x, T = data
        ll, _ = _log_likelihood(params, self.season, _History(x, t_x, T, self.cutoff))
        return ll

    def conditional_probability_alive(
        self, x: np.ndarray, t_x: np.ndarray, T: np.ndarray
    ) -> np.ndarray:
        _, alive = _log_likelihood(self._params, self.season, _History(x, t_x, T, self.cutoff))
        return np.asarray(np.exp(alive))

    def _ahead(self, t: float | np.ndarray, x: np.ndarray, T: np.ndarray) -> _Ahead:
        """The horizon after each customer's cut-off. Its nodes depend only on the cut-off and
        the horizon, which most calls share among all customers: computed once per pair."""
        _, alpha, _, beta = self._params
        horizon = np.broadcast_to(np.asarray(t, dtype=float), np.shape(x))
        pairs, row = np.unique(np.column_stack([self.cutoff, horizon]), axis=0, return_inverse=True)
        row = row.ravel()
        cutoff, days = pairs[:, 0], pairs[:, 1]
        span = _Span(cutoff, np.zeros(len(pairs)), days)
        tau = span.swing
        first = self.cutoff - T / _TO_DAYS
        return _Ahead(
            days=tau.days[row],
            intensity=self.season.intensity(tau.angle)[row],
            clock=tau.operational(self.season)[row],
            weights=np.exp(span.log_weights)[row],
            horizon=horizon,
            clock_at_end=_Swing(cutoff, days).operational(self.season)[row],
            exposure=alpha + _Swing(first, T).operational(self.season),
            lasted=beta + T,
        )

    def expected_if_alive(
        self, t: float | np.ndarray, x: np.ndarray, t_x: np.ndarray, T: np.ndarray
    ) -> np.ndarray:
        """E[lambda] * integral over the horizon of s(day) P(still alive):
        (r+x)/(alpha+U(T)) * integral s(tau) ((beta+T)/(beta+T+tau))^s."""
        r, _, s, _ = self._params
        ahead = self._ahead(t, x, T)
        lasted = ahead.lasted[:, None]
        rate = ahead.intensity * (lasted / (lasted + ahead.days)) ** s
        return np.asarray((r + x) / ahead.exposure * (ahead.weights * rate).sum(axis=1))

    def conditional_probability_no_purchase(
        self, t: float | np.ndarray, x: np.ndarray, t_x: np.ndarray, T: np.ndarray
    ) -> np.ndarray:
        """Dead at T, or alive and no purchase in t (``quiet_if_alive``), the purchases' clock
        being operational time from the cut-off."""
        ahead = self._ahead(t, x, T)
        quiet = quiet_if_alive(
            self._params,
            x,
            ahead.exposure,
            ahead.lasted,
            ahead.horizon,
            ahead.clock_at_end,
            (ahead.days, ahead.clock, ahead.weights),
        )
        alive = self.conditional_probability_alive(x, t_x, T)
        return np.asarray(1 - alive + alive * quiet)


def cutoff_angle(features: pd.DataFrame) -> np.ndarray:
    """Each row's cut-off as a yearly angle, from the portrait's ``cutoff_season_*``."""
    return np.asarray(
        np.arctan2(
            features["cutoff_season_sin"].to_numpy(dtype=float),
            features["cutoff_season_cos"].to_numpy(dtype=float),
        )
    )


def fit_season(
    plain: ParetoNBDFitter,
    data: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    repeat_days: np.ndarray,
) -> tuple[ParetoNBDFitter, Season] | None:
    """Pareto/NBD refitted with a yearly cycle (its parameters, and the likelihood it reached
    with the cycle), and the cycle; None where the cycle does not pass the test (module
    docstring). ``plain``: the model fitted without one on the same customers; ``data``: their
    (x, t_x, T, cut-off angle); ``repeat_days``: the day (since 1970) of every repeat purchase
    day of theirs."""
    if len(repeat_days) < 2 or np.ptp(repeat_days) < MIN_SPAN_DAYS:
        return None
    frame = pd.DataFrame(dict(zip("xtTc", data, strict=True)))
    grouped = frame.groupby(list("xtTc")).size().reset_index(name="weight")
    history = _History(*(grouped[k].to_numpy(dtype=float) for k in "xtTc"))
    weights = grouped["weight"].to_numpy(dtype=float)
    day, count = np.unique(repeat_days, return_counts=True)
    repeats, counts = angle_of_day(day), count.astype(float)
    total = weights.sum()

    def mean_ll(params: np.ndarray, season: Season) -> float:
        with np.errstate(all="ignore"):
            ll, _ = _log_likelihood(params, season, history)
            density = (counts * np.log(season.intensity(repeats))).sum()
            value = float(((weights * ll).sum() + density) / total)
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
    statistic = 2 * total * (-float(result.fun) - plain.mean_log_likelihood_)
    if not np.isfinite(result.fun) or statistic <= CRITICAL:
        return None
    fitted = ParetoNBDFitter()
    fitted.params_ = dict(zip(plain.param_names, np.exp(result.x[:-2]).tolist(), strict=True))
    fitted.mean_log_likelihood_ = -float(result.fun)
    return fitted, Season(float(result.x[-2]), float(result.x[-1]), float(statistic))
