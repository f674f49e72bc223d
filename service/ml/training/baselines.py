"""The BTYD models training fits: the network's own at each cut-off (its outputs are features)
and every candidate at the training time."""

from __future__ import annotations

from datetime import datetime

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


def fit_baselines(
    activity: Activity, cutoff: datetime, config: TrainConfig
) -> dict[str, BtydBaseline]:
    """Every BTYD candidate at the cut-off, the network's own (``count_model``) first: it must
    converge; another that does not is left out."""
    baselines = converged(_everyone(activity, cutoff))
    own = _required(baselines, config, cutoff)
    return {config.count_model: own, **baselines}


def _everyone(activity: Activity, cutoff: datetime) -> pd.DataFrame:
    """The BTYD summary at the cut-off of this rank's customers (``activity``) and every other
    rank's (``collective``): the models are fitted on the whole shop, whichever rank fits them."""
    features = behaviour_features(activity.days, day_number(cutoff))
    return collective.by_customer(features[list(BTYD_INPUTS)])


def converged(
    features: pd.DataFrame, names: tuple[str, ...] = BTYD_CANDIDATES
) -> dict[str, BtydBaseline]:
    """Each named BTYD model fitted on ``features`` (the portrait); one that does not converge
    on these data is left out."""
    fitted = {}
    for name in names:
        try:
            fitted[name] = BtydBaseline(name).fit(features)  # type: ignore[arg-type]
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
