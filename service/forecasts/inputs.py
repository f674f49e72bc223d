"""What a forecast reads, assembled from the portrait's aggregates, per-customer predictions and
the champion: the same for a forecast from the stored scores (``service``) and for a backtest
from a model trained at the cut-off (``backtest``)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from service.errors import InvalidRequestError
from service.forecasts.existing import ScoredCustomers
from service.forecasts.history import shop_history
from service.forecasts.model import Inputs
from service.ml.activity import Activity
from service.ml.btyd.base import PurchaseCountFitter
from service.ml.categories import UNCATEGORISED
from service.ml.clv_model import ClvModel
from service.ml.features import behaviour_features

PREDICTIONS = ("expected_orders", "expected_order_value", "horizon_days", "offset_days")
"""The columns of the per-customer predictions, indexed by customer_id."""


def curve_fitter(model: ClvModel) -> PurchaseCountFitter:
    """The BTYD model whose curves spread the orders over time: the one that serves customers
    with an order when a BTYD model does, else Pareto/NBD (which the champion's P(alive) comes
    from), else the model's default baseline. A seasonal Pareto/NBD gives its yearly-average
    curve (its cycle left out): the forecast applies the shop's own season to the days where
    it has two years of history (``service.forecasts.rhythm``)."""
    served = model.serving.served if model.serving is not None else ""
    baseline = model.baselines.get(served) or model.baselines.get("paretonbd") or model.btyd
    return baseline.counts_


def population_order_value(model: ClvModel) -> float:
    """Gamma-Gamma's expected order value of a customer with no repeat order yet."""
    zero = np.zeros(1)
    return float(model.btyd.spend_.conditional_expected_average_profit(zero, zero)[0])


def build_inputs(
    activity: Activity, predictions: pd.DataFrame, model: ClvModel, last_day: int
) -> Inputs:
    """Inputs for a forecast whose history ends on ``last_day``: the customers with an order by
    then that have a prediction (a customer without one is acquired when they first order, and
    counts among the new customers: no customer is counted twice)."""
    days = activity.days[activity.days["day"] <= last_day]
    features = behaviour_features(days, last_day)
    buyers = features.index[features["has_purchased"].to_numpy() > 0]
    customers = buyers.intersection(predictions.index)
    if customers.empty:
        raise InvalidRequestError("no customer with an order has a prediction to forecast from")
    rows, found = features.loc[customers], predictions.loc[customers]
    order_days = rows["frequency"].to_numpy() + 1
    mix, categories = _unit_mix(activity, features.index)
    shares = np.array(mix.reindex(customers, fill_value=0.0).to_numpy(np.float64), copy=True)
    unmixed = shares.sum(axis=1) == 0  # bought nothing with line items
    shares[unmixed, categories.index(UNCATEGORISED)] = 1.0
    total_units = mix.sum(axis=0).to_numpy()
    scored = ScoredCustomers(
        expected_orders=found["expected_orders"].to_numpy(np.float64),
        order_value=found["expected_order_value"].to_numpy(np.float64),
        horizon_days=found["horizon_days"].to_numpy(np.float64),
        offset_days=np.maximum(found["offset_days"].to_numpy(np.float64), 0.0),
        frequency=rows["frequency"].to_numpy(np.float64),
        recency_days=rows["recency_days"].to_numpy(np.float64),
        age_days=rows["age_days"].to_numpy(np.float64),
        units_per_order=rows["units_total"].to_numpy(np.float64) / order_days,
        shares=shares / shares.sum(axis=1, keepdims=True),
    )
    all_buyers = features.loc[buyers]
    return Inputs(
        customers=scored,
        fitter=curve_fitter(model),
        population_order_value=population_order_value(model),
        history=shop_history(days, last_day),
        categories=categories,
        new_shares=_shop_mix(total_units, categories),
        new_units_per_order=float(
            all_buyers["units_total"].sum() / (all_buyers["frequency"].sum() + len(all_buyers))
        ),
        scored_horizon_days=int(found["horizon_days"].min()),
        level_error=level_error(model),
    )


def level_error(model: ClvModel) -> float:
    """The served candidate's aggregate revenue error on the time-later window it was chosen
    on (0 when the model has no such record): how far off its level can be."""
    report = model.training_report
    if report is None:
        return 0.0
    validation = report.validation
    found = validation.candidates.get(validation.served, {}).get("aggregate_revenue_error")
    return float(found) if found is not None and np.isfinite(found) else 0.0


def _unit_mix(activity: Activity, customers: pd.Index) -> tuple[pd.DataFrame, list[str]]:
    """(customers x categories) units bought, and the categories ("uncategorised" always among
    them: products without one, and customers without line items)."""
    bought = activity.products[activity.products["bought"] > 0]
    category = (
        activity.catalogue.set_index("sku")["category"].reindex(bought["sku"].to_numpy())
        if not activity.catalogue.empty
        else pd.Series(index=bought["sku"].to_numpy(), dtype=object)
    )
    named = category.fillna(UNCATEGORISED).astype(str).to_numpy()
    frame = pd.DataFrame(
        {
            "customer_id": bought["customer_id"].to_numpy(),
            "category": named,
            "units": bought["bought"].to_numpy(np.float64),
        }
    )
    mix = frame.pivot_table(
        index="customer_id", columns="category", values="units", aggfunc="sum", fill_value=0.0
    )
    if UNCATEGORISED not in mix.columns:
        mix[UNCATEGORISED] = 0.0
    categories = sorted(str(c) for c in mix.columns)
    return mix.reindex(index=customers, columns=categories, fill_value=0.0), categories


def _shop_mix(total_units: np.ndarray, categories: list[str]) -> np.ndarray:
    if total_units.sum() <= 0:
        shares = np.zeros(len(categories))
        shares[categories.index(UNCATEGORISED)] = 1.0
        return shares
    mix: np.ndarray = total_units / total_units.sum()
    return mix
