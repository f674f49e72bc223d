"""Pareto/NBD (Schmittlein, Morrison & Colombo 1987), in the form of Fader & Hardie's 2005 note
"A Note on Deriving the Pareto/NBD Model and Related Expressions".

Purchases follow a Poisson process with rate lambda ~ Gamma(r, alpha) during an exponential
lifetime with rate mu ~ Gamma(s, beta). Data per customer as for BG/NBD: ``x``, ``t_x``, ``T``.
"""

from __future__ import annotations

import numpy as np
from scipy.special import gammaln, hyp2f1, logsumexp

from service.ml.btyd.base import PurchaseCountFitter


def quadrature_rule(
    panels: int = 6, nodes: int = 6, growth: float = 3.0
) -> tuple[np.ndarray, np.ndarray]:
    """Positions in [0, 1] and their weights (summing to 1) for the integrals over a span of
    days: Gauss-Legendre on panels that grow geometrically from 0. The integrands peak at the
    start of their span (a customer who bought often and then stopped most likely stopped soon
    after) and can fall by orders of magnitude within days of a span of hundreds."""
    edges = (growth ** np.arange(panels + 1) - 1) / (growth**panels - 1)
    base, weight = np.polynomial.legendre.leggauss(nodes)
    width = np.diff(edges)
    positions = edges[:-1, None] + width[:, None] * (base[None, :] + 1) / 2
    return positions.ravel(), (width[:, None] * weight[None, :] / 2).ravel()


POSITIONS, WEIGHTS = quadrature_rule()


def quiet_if_alive(
    params: np.ndarray,
    x: np.ndarray,
    exposure: np.ndarray,
    lasted: np.ndarray,
    horizon: np.ndarray,
    ahead: np.ndarray,
    nodes: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> np.ndarray:
    """P(no purchase in the ``horizon`` | alive at T). Given alive at T the rates are
    independent, lambda ~ Gamma(r + x, ``exposure``) and mu ~ Gamma(s, ``lasted`` = beta + T);
    the customer makes no purchase if they live through the horizon without one, or drop out at
    tau before one, which integrates over both rates to
    (e/(e + A(t)))^(r+x) (l/(l+t))^s + integral (e/(e + A(tau)))^(r+x) s/l (l/(l+tau))^(s+1),
    with A the purchases' clock after T (``ahead`` over the whole horizon). ``nodes``: the
    integral's (days tau, clock A(tau), quadrature weights), one row per customer."""
    r, _, s, _ = params
    days, clock, weights = nodes
    survives = (exposure / (exposure + ahead)) ** (r + x) * (lasted / (lasted + horizon)) ** s
    quiet = (exposure[:, None] / (exposure[:, None] + clock)) ** (r + x)[:, None]
    drops = s / lasted[:, None] * (lasted[:, None] / (lasted[:, None] + days)) ** (s + 1)
    return np.asarray(survives + (weights * quiet * drops).sum(axis=1))


def span_nodes(start: np.ndarray, end: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The quadrature rule's (days, log weights) over ``start`` to ``end``, one row a customer."""
    width = np.asarray(end - start, dtype=float)
    days = start[:, None] + width[:, None] * POSITIONS[None, :]
    return days, np.log(np.maximum(width, 1e-300))[:, None] + np.log(WEIGHTS)[None, :]


def log_dropped_out(
    params: np.ndarray, x: np.ndarray, days: np.ndarray, clock: np.ndarray, log_weights: np.ndarray
) -> np.ndarray:
    """log of the likelihood's share of dropping out between the nodes' span, integrated over
    the moment tau, both rates in closed form: integral (alpha + A(tau))^-(r+x) s/beta
    (beta/(beta+tau))^(s+1) (without Gamma(r+x) alpha^r / Gamma(r)), A the purchases' clock
    since the first purchase (tau itself without a season). Nodes from ``span_nodes``."""
    r, alpha, s, beta = params
    return np.asarray(
        logsumexp(
            log_weights
            - (r + x)[:, None] * np.log(alpha + clock)
            + np.log(s / beta)
            + (s + 1) * np.log(beta / (beta + days)),
            axis=1,
        )
    )


class ParetoNBDFitter(PurchaseCountFitter):
    param_names = ("r", "alpha", "s", "beta")
    initial = (1.0, 30.0, 1.0, 300.0)

    @staticmethod
    def _log_a0(params: np.ndarray, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> np.ndarray:
        """log A_0 of the note's equation (19), with the 2F1 argument z kept in [0, 1): the
        larger of alpha and beta goes in the denominator (the note's two cases). For a heavy
        buyer (r + x in the hundreds) and a beta far above alpha, 2F1 itself passes the largest
        float, and inf - inf made the likelihood NaN, which read as a certain churn and no
        orders for the best customers; there Euler's transformation 2F1(a, b; a+1; z) =
        (1-z)^(1-b) 2F1(1, a+1-b; a+1; z) keeps it in logarithms. Where scipy's 2F1 gives no
        number either way (large a with z near 1), A_0 is integrated by quadrature
        (``log_dropped_out``)."""
        r, alpha, s, beta = params
        x, t_x, T = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (x, t_x, T)))
        larger, smaller = max(alpha, beta), min(alpha, beta)
        b_param = r + x if alpha < beta else s + 1
        rsx = r + s + x

        def log_term(t: np.ndarray) -> np.ndarray:
            """log of 2F1(rsx, b; rsx+1; z(t)) / (larger + t)^rsx."""
            z = (larger - smaller) / (larger + t)
            log_f = np.asarray(np.log(hyp2f1(rsx, b_param, rsx + 1, z)))
            over = ~np.isfinite(log_f)
            if over.any():
                b, c, u = np.broadcast_to(b_param, over.shape)[over], rsx[over] + 1, t[over]
                below = np.log(smaller + u) - np.log(larger + u)  # log(1 - z), exactly
                log_f[over] = (1 - b) * below + np.log(hyp2f1(1.0, c - b, c, z[over]))
            return np.asarray(log_f - rsx * np.log(larger + t))

        # A_0 = F(t_x)/(L+t_x)^rsx - F(T)/(L+T)^rsx, the first term the larger.
        log_a0 = np.asarray(
            logsumexp(
                [log_term(t_x), log_term(T)],
                axis=0,
                b=[np.ones_like(rsx), -np.ones_like(rsx)],
            )
        )
        log_a0[t_x >= T] = -np.inf  # no time to drop out in: A_0 = 0 (2F1 may not say so)
        failed = ~np.isfinite(log_a0) & (t_x < T)
        if failed.any():  # A_0 = (r+s+x) / (s beta^s) times the integral of log_dropped_out
            days, log_weights = span_nodes(t_x[failed], T[failed])
            died = log_dropped_out(params, x[failed], days, days, log_weights)
            log_a0[failed] = died + np.log(rsx[failed]) - np.log(s) - s * np.log(beta)
        return log_a0

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
        """Dead at T, or alive and no purchase in t (``quiet_if_alive``)."""
        params = self._params
        _, alpha, _, beta = params
        x, T = np.asarray(x, dtype=float), np.asarray(T, dtype=float)
        horizon = np.broadcast_to(np.asarray(t, dtype=float), x.shape)
        days = horizon[:, None] * POSITIONS[None, :]
        nodes = (days, days, horizon[:, None] * WEIGHTS[None, :])
        quiet = quiet_if_alive(params, x, alpha + T, beta + T, horizon, horizon, nodes)
        alive = self.conditional_probability_alive(x, t_x, T)
        return np.asarray(1 - alive + alive * quiet)
