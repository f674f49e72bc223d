"""Pareto/NBD (Schmittlein, Morrison & Colombo 1987), in the form of Fader & Hardie's 2005 note
"A Note on Deriving the Pareto/NBD Model and Related Expressions".

Purchases follow a Poisson process with rate lambda ~ Gamma(r, alpha) during an exponential
lifetime with rate mu ~ Gamma(s, beta). Data per customer as for BG/NBD: ``x``, ``t_x``, ``T``.
"""

from __future__ import annotations

import numpy as np
from scipy.special import gammaln, hyp2f1, logsumexp
from scipy.stats import gamma

from service.ml.btyd.base import PurchaseCountFitter

_GRID = (np.arange(32) + 0.5) / 32
"""Quantile levels at which the posterior gammas are evaluated (a midpoint rule in probability):
the expectation in ``conditional_probability_no_purchase`` has no closed form."""


class ParetoNBDFitter(PurchaseCountFitter):
    param_names = ("r", "alpha", "s", "beta")
    initial = (1.0, 30.0, 1.0, 300.0)

    @staticmethod
    def _log_a0(params: np.ndarray, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> np.ndarray:
        """log A_0 of the note's equation (19), with the 2F1 argument kept in [0, 1): the
        larger of alpha and beta goes in the denominator (the note's two cases)."""
        r, alpha, s, beta = params
        larger, smaller = max(alpha, beta), min(alpha, beta)
        b_param = r + x if alpha < beta else s + 1
        rsx = r + s + x
        at_last = hyp2f1(rsx, b_param, rsx + 1, (larger - smaller) / (larger + t_x))
        at_end = hyp2f1(rsx, b_param, rsx + 1, (larger - smaller) / (larger + T))
        # A_0 = F(t_x)/(L+t_x)^rsx - F(T)/(L+T)^rsx, with F(t_x)/(L+t_x)^rsx the larger term.
        return np.asarray(
            logsumexp(
                [
                    np.log(at_last) - rsx * np.log(larger + t_x),
                    np.log(at_end) - rsx * np.log(larger + T),
                ],
                axis=0,
                b=[np.ones_like(rsx), -np.ones_like(rsx)],
            )
        )

    def log_likelihood(self, params: np.ndarray, *data: np.ndarray) -> np.ndarray:
        """The note's equation (22): L = Gamma(r+x) alpha^r beta^s / Gamma(r)
        * [1/((alpha+T)^(r+x) (beta+T)^s) + s/(r+s+x) A_0]."""
        r, alpha, s, beta = params
        x, t_x, T = data
        common = gammaln(r + x) - gammaln(r) + r * np.log(alpha) + s * np.log(beta)
        alive = -(r + x) * np.log(alpha + T) - s * np.log(beta + T)
        died = np.log(s) - np.log(r + s + x) + self._log_a0(params, x, t_x, T)
        return np.asarray(common + np.logaddexp(alive, died))

    def conditional_probability_alive(
        self,
        x: np.ndarray,
        t_x: np.ndarray,
        T: np.ndarray,
    ) -> np.ndarray:
        """The note's equation (24): the "still alive at T" share of the likelihood."""
        params = self._params
        r, alpha, s, beta = params
        common = gammaln(r + x) - gammaln(r) + r * np.log(alpha) + s * np.log(beta)
        alive = common - (r + x) * np.log(alpha + T) - s * np.log(beta + T)
        return np.asarray(np.exp(alive - self.log_likelihood(params, x, t_x, T)))

    def expected_if_alive(
        self,
        t: float | np.ndarray,
        x: np.ndarray,
        t_x: np.ndarray,
        T: np.ndarray,
    ) -> np.ndarray:
        """The note's equation (27) without its P(alive) factor:
        E[Y(t) | alive] = (r+x)(beta+T) / ((alpha+T)(s-1)) * [1 - ((beta+T)/(beta+T+t))^(s-1)],
        written as (1 - ratio^(s-1)) / (s-1), which stays positive for s < 1 too."""
        r, alpha, s, beta = self._params
        ratio = (beta + T) / (beta + T + t)
        decay = -np.log(ratio) if abs(s - 1) < 1e-9 else (1 - ratio ** (s - 1)) / (s - 1)
        return np.asarray((r + x) * (beta + T) / (alpha + T) * decay)

    def conditional_probability_no_purchase(
        self,
        t: float | np.ndarray,
        x: np.ndarray,
        t_x: np.ndarray,
        T: np.ndarray,
    ) -> np.ndarray:
        """Dead at T, or alive and no purchase in t. Given alive at T the rates are independent,
        lambda ~ Gamma(r + x, alpha + T) and mu ~ Gamma(s, beta + T), and the customer makes no
        purchase if they die first or the first purchase comes after t:
        mu/(lambda+mu) + lambda/(lambda+mu) exp(-(lambda+mu) t), averaged over both posteriors
        on a grid of their quantiles (no closed form)."""
        r, alpha, s, beta = self._params
        x, T = np.asarray(x, dtype=float), np.asarray(T, dtype=float)
        horizon = np.broadcast_to(np.asarray(t, dtype=float), x.shape)  # one per customer
        alive = self.conditional_probability_alive(x, t_x, T)
        unit_mu = gamma.ppf(_GRID, s)  # (G,): mu * (beta + T)
        # lambda * (alpha + T) per distinct r + x: frequencies repeat, and the quantile
        # function is most of the cost
        shapes, shape_of = np.unique(r + x, return_inverse=True)
        unit_lam = gamma.ppf(_GRID[None, :], shapes[:, None])
        quiet = np.empty(len(x))
        for start in range(0, len(x), 2048):
            part = slice(start, start + 2048)
            lam = unit_lam[shape_of[part]] / (alpha + T[part])[:, None]
            mu = unit_mu[None, :] / (beta + T[part])[:, None]
            total = lam[:, :, None] + mu[:, None, :]  # (n, G, G)
            decay = np.exp(-total * horizon[part, None, None])
            stays = (mu[:, None, :] + lam[:, :, None] * decay) / total
            quiet[part] = stays.mean(axis=(1, 2))
        return np.asarray(1 - alive + alive * quiet)
