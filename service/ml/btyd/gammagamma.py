"""Gamma-Gamma spend model (Fader, Hardie & Lee 2005, "RFM and CLV", appendix; Colombo & Jiang).

A customer's order values are Gamma(p, nu) with nu ~ Gamma(q, gamma) across customers; only
customers with repeat purchases inform it, through ``x`` (repeat purchases) and ``m`` (their mean
value). It assumes spend is independent of purchase frequency.
"""

from __future__ import annotations

from typing import Self

import numpy as np
from scipy.special import gammaln

from service.ml.btyd.base import BaseFitter


class GammaGammaFitter(BaseFitter):
    param_names = ("p", "q", "v")
    initial = (2.0, 2.0, 50.0)
    log_bounds = ((-12.0, 12.0), (float(np.log(1.01)), 12.0), (-12.0, 12.0))
    """q > 1: the expected order value p v / (q - 1) exists only there (heavy-tailed order values
    otherwise drive the fit below 1 and the population's expected order value negative)."""

    def fit(self, x: np.ndarray, m: np.ndarray) -> Self:
        keep = (np.asarray(x) > 0) & (np.asarray(m) > 0)
        return self._fit(np.asarray(x)[keep], np.asarray(m)[keep])

    def log_likelihood(self, params: np.ndarray, *data: np.ndarray) -> np.ndarray:
        """log of Gamma(px+q) / (Gamma(px) Gamma(q)) * v^q m^(px-1) x^(px) / (v + m x)^(px+q)."""
        p, q, v = params
        x, m = data
        return np.asarray(
            gammaln(p * x + q) - gammaln(p * x) - gammaln(q) + q * np.log(v)
            + (p * x - 1) * np.log(m) + p * x * np.log(x) - (p * x + q) * np.log(v + m * x)
        )  # fmt: skip

    def conditional_expected_average_profit(self, x: np.ndarray, m: np.ndarray) -> np.ndarray:
        """E[order value | x, m] = p (v + m x) / (p x + q - 1): a weighted average of the population
        mean p v / (q - 1) and the customer's own mean m; the population mean when x = 0."""
        p, q, v = self._params
        x, m = np.asarray(x, dtype=float), np.asarray(m, dtype=float)
        return np.asarray(np.where(x > 0, p * (v + m * x) / (p * x + q - 1), p * v / (q - 1)))
