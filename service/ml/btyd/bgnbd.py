"""BG/NBD (Fader, Hardie & Lee 2005, "Counting Your Customers the Easy Way").

Purchases follow a Poisson process with rate lambda ~ Gamma(r, alpha); after each purchase the
customer drops out with probability p ~ Beta(a, b). Data per customer: ``x`` repeat purchases,
``t_x`` the time of the last one and ``T`` the time observed, all from the first purchase.
"""

from __future__ import annotations

import numpy as np
from scipy.special import betaln, gammaln, hyp2f1

from service.ml.btyd.base import PurchaseCountFitter


class BetaGeoFitter(PurchaseCountFitter):
    param_names = ("r", "alpha", "a", "b")
    initial = (1.0, 30.0, 1.0, 2.0)

    def log_likelihood(self, params: np.ndarray, *data: np.ndarray) -> np.ndarray:
        """Equation (6) of the paper, in logs:
        L = B(a, b+x)/B(a, b) * Gamma(r+x) alpha^r / (Gamma(r) (alpha+T)^(r+x))
          + [x > 0] B(a+1, b+x-1)/B(a, b) * Gamma(r+x) alpha^r / (Gamma(r) (alpha+t_x)^(r+x))."""
        r, alpha, a, b = params
        x, t_x, T = data
        common = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
        stays = betaln(a, b + x) - betaln(a, b) - (r + x) * np.log(alpha + T)
        with np.errstate(divide="ignore", invalid="ignore"):
            drops = betaln(a + 1, b + x - 1) - betaln(a, b) - (r + x) * np.log(alpha + t_x)
        drops = np.where(x > 0, drops, -np.inf)
        return np.asarray(common + np.logaddexp(stays, drops))

    def conditional_probability_alive(
        self,
        x: np.ndarray,
        t_x: np.ndarray,
        T: np.ndarray,
    ) -> np.ndarray:
        """Equation (13): P(alive | x, t_x, T)
        = 1 / (1 + [x > 0] a/(b+x-1) ((alpha+T)/(alpha+t_x))^(r+x))."""
        r, alpha, a, b = self._params
        with np.errstate(divide="ignore", invalid="ignore"):
            log_odds = (
                np.log(a) - np.log(b + x - 1) + (r + x) * (np.log(alpha + T) - np.log(alpha + t_x))
            )
        return np.where(x > 0, 1.0 / (1.0 + np.exp(np.minimum(log_odds, 700))), 1.0)

    def expected_if_alive(
        self,
        t: float | np.ndarray,
        x: np.ndarray,
        t_x: np.ndarray,
        T: np.ndarray,
    ) -> np.ndarray:
        """Equation (10)'s numerator: expected purchases in (T, T+t] given the history, divided
        by P(alive) (its denominator is 1 / P(alive)). For a heavy buyer over a long horizon
        (x in the hundreds) ratio^(r+x) underflows to 0 while 2F1 overflows: there the product
        is taken by Euler's transformation, (1-z)^(a-1) 2F1(a+b-1-r, a-1; a+b+x-1; z), whose
        parts stay finite (ratio = 1 - z)."""
        r, alpha, a, b = self._params
        x, T, t = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (x, T, t)))
        ratio = (alpha + T) / (alpha + T + t)
        z, c = t / (alpha + T + t), a + b + x - 1
        with np.errstate(over="ignore", under="ignore", invalid="ignore"):
            product = np.asarray(ratio ** (r + x) * hyp2f1(r + x, b + x, c, z))
        over = ~np.isfinite(product)
        if over.any():
            euler = ratio[over] ** (a - 1) * hyp2f1(a + b - 1 - r, a - 1, c[over], z[over])
            product[over] = euler
        return np.asarray(c / (a - 1) * (1 - product))

    def conditional_probability_no_purchase(
        self,
        t: float | np.ndarray,
        x: np.ndarray,
        t_x: np.ndarray,
        T: np.ndarray,
    ) -> np.ndarray:
        """Dead at T, or alive with no purchase in t: an alive customer can only drop out right
        after a purchase, so given alive, X(t) = 0 is the NBD's zero with lambda's posterior
        Gamma(r + x, alpha + T): P = 1 - P(alive) + P(alive) ((alpha+T)/(alpha+T+t))^(r+x)."""
        r, alpha, _, _ = self._params
        alive = self.conditional_probability_alive(x, t_x, T)
        quiet = np.exp((r + x) * (np.log(alpha + T) - np.log(alpha + T + t)))
        return np.asarray(1 - alive + alive * quiet)

    def expected_number_of_purchases_up_to_time(self, t: np.ndarray | float) -> np.ndarray:
        """Equation (9): expected purchases in (0, t] for a customer just acquired."""
        r, alpha, a, b = self._params
        hyper = hyp2f1(r, b, a + b - 1, t / (alpha + t))
        return np.asarray((a + b - 1) / (a - 1) * (1 - (alpha / (alpha + t)) ** r * hyper))
