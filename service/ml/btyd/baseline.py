"""The BTYD baseline: a purchase-count model (BG/NBD or Pareto/NBD) with Gamma-Gamma spend.

It reads the portrait's BTYD summary (frequency, recency, age and monetary value in days and the
shop currency, and the cut-off's time of year) and predicts, per customer, expected orders in a
horizon, the probability of being alive, the expected order value and CLV over the horizon
(optionally discounted). It is the yardstick for the deep model, its fallback, and a source of
its features. Customers without an order are outside these models (they start at a first
purchase): predictions for them are 0. Fitted with the days of the repeat purchases, Pareto/NBD
gains the shop's yearly season where the data show one (``service.ml.btyd.season``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from service.ml.btyd.base import PurchaseCountFitter
from service.ml.btyd.bgnbd import BetaGeoFitter
from service.ml.btyd.gammagamma import GammaGammaFitter
from service.ml.btyd.paretonbd import ParetoNBDFitter
from service.ml.btyd.season import Season, SeasonalParetoNBD, cutoff_angle, fit_season

CountModel = Literal["bgnbd", "paretonbd"]
_COUNT_MODELS: dict[str, type[PurchaseCountFitter]] = {
    "bgnbd": BetaGeoFitter,
    "paretonbd": ParetoNBDFitter,
}
BTYD_INPUTS = (
    "frequency", "recency_days", "age_days", "monetary_value", "has_purchased",
    "cutoff_season_sin", "cutoff_season_cos",
)  # fmt: skip
"""The portrait's columns these models read: all a BTYD fit needs of a customer."""
OUTPUTS = ("btyd_expected_orders", "btyd_probability_alive", "btyd_order_value", "btyd_clv")


@dataclass
class BtydBaseline:
    count_model: CountModel = "bgnbd"

    def fit(self, features: pd.DataFrame, repeat_days: np.ndarray | None = None) -> BtydBaseline:
        """``features``: the portrait (``BTYD_INPUTS`` of it); only customers with an order are
        used. ``repeat_days``: the day (since 1970) of each of their repeat purchase days, to
        look for a yearly season in (Pareto/NBD only: ``service.ml.btyd.season``); without
        them, none."""
        buyers = features[features["has_purchased"] > 0]
        self.counts_ = fit_counts(self.count_model, buyers)
        self.season_: Season | None = None  # the shop's yearly cycle, where found
        if repeat_days is not None and isinstance(self.counts_, ParetoNBDFitter):
            x, recency, age, _ = _summary(buyers)
            seasonal = fit_season(
                self.counts_, (x, recency, age, cutoff_angle(buyers)), repeat_days
            )
            if seasonal is not None:
                self.counts_, self.season_ = seasonal
        self.spend_ = GammaGammaFitter().fit(
            buyers["frequency"].to_numpy(), buyers["monetary_value"].to_numpy()
        )
        return self

    def expected_orders(self, features: pd.DataFrame, days: float) -> np.ndarray:
        x, t_x, age, bought = _summary(features)
        expected = self._counts(features).conditional_expected_number_of_purchases_up_to_time(
            days, x, t_x, age
        )
        return np.where(bought, np.nan_to_num(expected), 0.0)

    def probability_alive(self, features: pd.DataFrame) -> np.ndarray:
        x, t_x, age, bought = _summary(features)
        alive = self._counts(features).conditional_probability_alive(x, t_x, age)
        return np.where(bought, alive, 0.0)

    def probability_no_purchase(self, features: pd.DataFrame, days: float) -> np.ndarray:
        """P(no order in the next ``days``) for customers with an order (1 for the others:
        outside the model)."""
        x, t_x, age, bought = _summary(features)
        quiet = self._counts(features).conditional_probability_no_purchase(days, x, t_x, age)
        return np.where(bought, np.clip(np.nan_to_num(quiet, nan=1.0), 0.0, 1.0), 1.0)

    def predict(
        self, features: pd.DataFrame, horizon_days: float, annual_discount_rate: float = 0.0
    ) -> pd.DataFrame:
        """One row per customer: OUTPUTS. CLV sums each 30-day step's expected orders times the
        expected order value, discounted to the start of the horizon."""
        x, t_x, age, bought = _summary(features)
        counts = self._counts(features)
        value = self.spend_.conditional_expected_average_profit(
            x, features["monetary_value"].to_numpy()
        )
        steps = np.unique(np.append(np.arange(30.0, horizon_days, 30.0), horizon_days))
        alive = counts.conditional_probability_alive(x, t_x, age)  # once for every step
        if_alive = [counts.expected_if_alive(step, x, t_x, age) for step in steps]
        expected = np.nan_to_num(np.stack(if_alive, axis=1) * alive[:, None])
        cumulative = np.where(bought[:, None], expected, 0.0)
        increments = np.diff(cumulative, axis=1, prepend=0.0)
        discount = (1 + annual_discount_rate) ** -(steps / 365.0)
        return pd.DataFrame(
            {
                "btyd_expected_orders": cumulative[:, -1],
                "btyd_probability_alive": np.where(bought, alive, 0.0),
                "btyd_order_value": np.where(bought, value, 0.0),
                "btyd_clv": np.where(bought, (increments * discount).sum(axis=1) * value, 0.0),
            },
            index=features.index,
        )

    def _counts(self, features: pd.DataFrame) -> PurchaseCountFitter:
        """The count model as it reads these customers: at their cut-offs' time of year where
        there is a season."""
        if self.season_ is None:
            return self.counts_
        return SeasonalParetoNBD(self.counts_.params_, self.season_, cutoff_angle(features))

    def state(self) -> dict[str, Any]:
        return {
            "count_model": self.count_model,
            "counts": self.counts_.params_,
            "spend": self.spend_.params_,
            "season": asdict(self.season_) if self.season_ is not None else None,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> BtydBaseline:
        season = state.get("season")  # absent from models saved before seasons
        if season and state["count_model"] != "paretonbd":
            raise ValueError(
                f"its {state['count_model']} has a yearly season, which this version fits in "
                "Pareto/NBD only; retrain it"
            )
        baseline = cls(state["count_model"])
        baseline.season_ = Season(**season) if season else None
        baseline.counts_ = _COUNT_MODELS[baseline.count_model]()
        baseline.counts_.params_ = dict(state["counts"])
        baseline.spend_ = GammaGammaFitter()
        baseline.spend_.params_ = dict(state["spend"])
        return baseline


def fit_counts(count_model: str, buyers: pd.DataFrame) -> PurchaseCountFitter:
    """The purchase-count model alone, fitted on the BTYD summary of customers with an order."""
    x, t_x, age, _ = _summary(buyers)
    return _COUNT_MODELS[count_model]().fit(x, t_x, age)


def _summary(features: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    x = features["frequency"].to_numpy(dtype=float)
    t_x = features["recency_days"].to_numpy(dtype=float)
    age = np.maximum(features["age_days"].to_numpy(dtype=float), t_x)
    return x, t_x, age, features["has_purchased"].to_numpy() > 0
