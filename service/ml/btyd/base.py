"""Maximum-likelihood fitting shared by the BTYD models.

A subclass names its parameters and gives the log-likelihood of each customer; ``fit`` minimises
the weighted mean negative log-likelihood over customers with L-BFGS-B on the logarithms of the
parameters (all of them are positive). Identical customers are collapsed into one weighted row
first, which makes fitting tens of thousands of customers fast. Fitted state ends in ``_``.
"""

from __future__ import annotations

from typing import ClassVar, Self

import numpy as np
import pandas as pd
from scipy.optimize import minimize


class ConvergenceError(RuntimeError):
    pass


_LOG_BOUNDS = (-12.0, 12.0)
"""Parameters between e^-12 and e^12: far beyond any shop's, and no overflow on the way."""
_UNLIKELY = 1e12


class BaseFitter:
    param_names: ClassVar[tuple[str, ...]]
    initial: ClassVar[tuple[float, ...]]
    log_bounds: ClassVar[tuple[tuple[float, float], ...] | None] = None  # default: _LOG_BOUNDS

    def __init__(self, penalizer: float = 0.0) -> None:
        self.penalizer = penalizer
        self.params_: dict[str, float] = {}

    def log_likelihood(self, params: np.ndarray, *data: np.ndarray) -> np.ndarray:
        """Log-likelihood of each customer's data under ``params`` (shape (n,))."""
        raise NotImplementedError

    def _fit(self, *data: np.ndarray) -> Self:
        frame = pd.DataFrame(
            {f"c{i}": np.asarray(column, dtype=float) for i, column in enumerate(data)}
        )
        grouped = frame.groupby(list(frame.columns)).size().reset_index(name="weight")
        columns = [grouped[f"c{i}"].to_numpy() for i in range(len(data))]
        weights = grouped["weight"].to_numpy(dtype=float)

        def objective(log_params: np.ndarray) -> float:
            params = np.exp(log_params)
            with np.errstate(all="ignore"):
                likelihood = self.log_likelihood(params, *columns)
                value = -(weights * likelihood).sum() / weights.sum()
            value = float(value + self.penalizer * (params**2).sum())
            # A step into overflow is a bad step, not the end: L-BFGS-B backs off a large value.
            return value if np.isfinite(value) else _UNLIKELY

        result = minimize(
            objective,
            np.log(self.initial),
            method="L-BFGS-B",
            bounds=list(self.log_bounds or [_LOG_BOUNDS] * len(self.initial)),
        )
        if not np.isfinite(result.fun) or result.fun >= _UNLIKELY:
            raise ConvergenceError(f"{type(self).__name__} did not converge: {result.message}")
        self.params_ = dict(zip(self.param_names, np.exp(result.x).tolist(), strict=True))
        self.mean_log_likelihood_ = -float(result.fun)
        return self

    @property
    def _params(self) -> np.ndarray:
        if not self.params_:
            raise RuntimeError(f"{type(self).__name__} is not fitted")
        return np.array([self.params_[name] for name in self.param_names])

    def __repr__(self) -> str:
        if not self.params_:
            return f"<{type(self).__name__}: not fitted>"
        fitted = ", ".join(f"{name}={value:.4g}" for name, value in self.params_.items())
        return f"<{type(self).__name__}: {fitted}>"


class PurchaseCountFitter(BaseFitter):
    """What the purchase-count models (BG/NBD, Pareto/NBD) share, for the callers that take
    either. Data: ``x`` repeat purchases, ``t_x`` the time of the last, ``T`` the time observed,
    all counted from the first purchase."""

    def fit(self, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> Self:
        return self._fit(x, t_x, T)

    def conditional_probability_alive(
        self, x: np.ndarray, t_x: np.ndarray, T: np.ndarray
    ) -> np.ndarray:
        raise NotImplementedError

    def expected_if_alive(
        self, t: float | np.ndarray, x: np.ndarray, t_x: np.ndarray, T: np.ndarray
    ) -> np.ndarray:
        """Expected purchases in (T, T+t] of a customer still alive at T (``t``: one horizon for
        all, or one per customer)."""
        raise NotImplementedError

    def conditional_expected_number_of_purchases_up_to_time(
        self, t: float | np.ndarray, x: np.ndarray, t_x: np.ndarray, T: np.ndarray
    ) -> np.ndarray:
        """Expected purchases in (T, T+t]: ``expected_if_alive`` times P(alive at T). Callers
        that want several horizons compute P(alive), the costly part, once
        (``service.ml.btyd.baseline``)."""
        alive = self.conditional_probability_alive(x, t_x, T)
        return np.asarray(self.expected_if_alive(t, x, t_x, T) * alive)

    def conditional_probability_no_purchase(
        self, t: float | np.ndarray, x: np.ndarray, t_x: np.ndarray, T: np.ndarray
    ) -> np.ndarray:
        """P(no purchase in (T, T+t] | x, t_x, T): the churn probability over a horizon."""
        raise NotImplementedError
