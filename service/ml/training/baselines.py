"""The BTYD models training fits: the network's own at each cut-off (its outputs are features)
and every candidate at the training time. The candidates look for the shop's yearly season in
the repeat purchases (``service.ml.btyd.season``); the network's own does not, so its outputs
mean the same at every cut-off it was trained on and at the training time."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd

from service.ml import collective
from service.ml.activity import Activity, day_number
from service.ml.btyd.base import ConvergenceError
from service.ml.btyd.baseline import BTYD_INPUTS, BtydBaseline
from service.ml.features import behaviour_features
from service.ml.selection import BTYD_CANDIDATES
from service.ml.training.config import DataTooShortError, TrainConfig


def fit_btyd(activity: Activity, cutoff: datetime, config: TrainConfig) -> BtydBaseline:
    """The network's own BTYD model (its outputs are features) at a cut-off."""
    return _required(converged(_everyone(activity, cutoff), (config.count_model,)), config, cutoff)


def fit_candidates(activity: Activity, cutoff: datetime) -> dict[str, BtydBaseline]:
    """Every BTYD candidate at the cut-off, with the yearly season where the repeat purchases
    show one; a candidate that does not converge is left out (the network's own count model
    converges: ``fit_btyd`` required it of the same customers)."""
    return converged(_everyone(activity, cutoff), repeat_days=repeat_days(activity, cutoff))


def _everyone(activity: Activity, cutoff: datetime) -> pd.DataFrame:
    """The BTYD summary at the cut-off of this rank's customers (``activity``) and every other
    rank's (``collective``): the models are fitted on the whole shop, whichever rank fits them."""
    features = behaviour_features(activity.days, day_number(cutoff))
    return collective.by_customer(features[list(BTYD_INPUTS)])


def repeat_days(activity: Activity, cutoff: datetime) -> np.ndarray:
    """The day (since 1970) of every repeat purchase day up to the cut-off, of this rank's
    customers and every other rank's: what a yearly season is fitted on."""
    days = activity.days
    bought = days[(days["orders"].to_numpy() > 0) & (days["day"].to_numpy() <= day_number(cutoff))]
    first = bought.groupby("customer_id")["day"].transform("min")
    return collective.concatenated(bought["day"].to_numpy()[bought["day"] > first])


def converged(
    features: pd.DataFrame,
    names: tuple[str, ...] = BTYD_CANDIDATES,
    repeat_days: np.ndarray | None = None,
) -> dict[str, BtydBaseline]:
    """Each named BTYD model fitted on ``features`` (the portrait), with a yearly season where
    ``repeat_days`` show one; one that does not converge on these data is left out."""
    fitted = {}
    for name in names:
        try:
            fitted[name] = BtydBaseline(name).fit(features, repeat_days)  # type: ignore[arg-type]
        except ConvergenceError:
            continue
    return fitted


def _required(
    baselines: dict[str, BtydBaseline], config: TrainConfig, cutoff: datetime
) -> BtydBaseline:
    """The network's own BTYD model among ``baselines``; without it (too few repeat buyers yet)
    the data start too late for a window at ``cutoff``."""
    if config.count_model not in baselines:
        raise DataTooShortError(
            f"the {config.count_model} model does not converge on the orders up to "
            f"{cutoff.date()}; the window needs more repeat buyers before it"
        )
    return baselines[config.count_model]
