"""Judging the candidates on the window before T (``service.ml.selection``), and setting what
the trained model serves."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from service.ml import collective
from service.ml.activity import Activity, day_number
from service.ml.btyd.baseline import BTYD_INPUTS
from service.ml.clv_model import ClvModel
from service.ml.examples import EventLog, Profiles, Sources
from service.ml.features import behaviour_features
from service.ml.insufficient import InsufficientDataError
from service.ml.metrics import evaluate, finite
from service.ml.selection import (
    BTYD_CANDIDATES,
    RULE,
    IntervalBands,
    QuantileMap,
    Serving,
    best_btyd,
    choose,
    selection_window,
)
from service.ml.training.baselines import converged, repeat_days
from service.ml.training.config import (
    MIN_VALIDATION_BUYERS,
    DataTooShortError,
    Progress,
    TrainConfig,
)
from service.ml.training.network import train_network
from service.ml.training.report import Metrics, Selection, SelectionWindow

Predictions = dict[str, np.ndarray]  # candidate -> one value per customer


@dataclass(frozen=True)
class Judgement:
    """What the time-later window decided (``serving``) and the figures it decided on."""

    serving: Serving
    selection: Selection


def judge(
    log: EventLog,
    profiles: Profiles,
    sources: Sources,
    as_of: datetime,
    config: TrainConfig,
    report: Progress,
    cancelled: Callable[[], bool] | None,
) -> Judgement:
    """Every candidate fitted on the events up to the window's start and compared on the
    customers with an order by then, against their spend in the window (``selection``)."""
    first = collective.earliest(log.first_moment)
    days = selection_window(first, as_of, config.horizon_days, config.min_history_days)
    start = as_of - timedelta(days=days)
    past = log.until(start)
    past_activity = past.activity()
    features = behaviour_features(past_activity.days, day_number(start))
    shard_buyers = features.index[features["has_purchased"] > 0] if len(features) else pd.Index([])
    # every rank's customers from here on (one process: the same frame), by id
    everyone = collective.by_customer(features[list(BTYD_INPUTS)])
    buyers = _buyers(everyone, start, days)
    actual = _window_spend(log, shard_buyers, start, as_of, days)
    predictions, purchases = btyd_predictions(
        everyone, buyers, days, repeat_days(past_activity, start)
    )
    notes = {}
    try:
        report(f"training the network on the events up to {start.date()}", 0.0)
        window_config = replace(config, horizon_days=days)
        spend, purchase = _network_predictions(
            past,
            profiles,
            sources,
            start,
            shard_buyers,
            window_config,
            report,
            cancelled,
            past_activity,
        )
        predictions["deep"] = collective.by_customer(pd.Series(spend, shard_buyers)).to_numpy()
        purchases["deep"] = collective.by_customer(pd.Series(purchase, shard_buyers)).to_numpy()
    except InsufficientDataError as error:  # the network needs more than the BTYD models
        notes["deep"] = f"not judged: {error}"
    if not any(name in predictions for name in BTYD_CANDIDATES):
        raise DataTooShortError(f"no BTYD model converged on the orders up to {start.date()}")
    metrics = {
        name: evaluate(actual, p, purchase_probability=purchases[name])
        for name, p in predictions.items()
    }
    anchor = best_btyd(metrics)
    if "deep" in predictions:
        _add_blend(predictions, purchases, metrics, actual, anchor, days)
    served, reasons = choose(metrics)
    bands = IntervalBands.fit(predictions[served], actual, days)
    low, _, high = bands.apply(predictions[served], days)
    selection = Selection(
        served=served,
        rule=RULE,
        window=SelectionWindow(start, as_of, days),
        customers=len(buyers),
        candidates=finite(metrics),
        reasons={**reasons, **notes},
        p10_p90_coverage=float(np.mean((actual >= low) & (actual <= high))),
    )
    return Judgement(Serving(served, anchor, bands), selection)


def inherit(start_from: ClvModel) -> Judgement:
    """A warm start's judgement: the choice of the model it starts from (what serves, the
    anchor, the interval bands), its figures marked inherited; the learning loop judges the
    new model against the champion on a holdout itself."""
    if start_from.serving is None:
        raise DataTooShortError("the model to start from has no serving choice; retrain")
    return Judgement(start_from.serving, replace(start_from.report.validation, inherited=True))


def _buyers(features: pd.DataFrame, start: datetime, days: int) -> pd.Index:
    """The customers with an order by the window's start: those the candidates are judged on,
    refused when too few to judge on."""
    buyers = features.index[features["has_purchased"] > 0] if len(features) else pd.Index([])
    if len(buyers) < MIN_VALIDATION_BUYERS:
        raise DataTooShortError(
            f"{len(buyers)} customers have an order by {start.date()}, the start of the "
            f"{days}-day window the candidates are judged on; at least {MIN_VALIDATION_BUYERS} "
            "are needed"
        )
    return buyers


def _window_spend(
    log: EventLog, shard_buyers: pd.Index, start: datetime, as_of: datetime, days: int
) -> np.ndarray:
    """What the buyers spent in the window, every rank's (each reads its ``shard_buyers``') in
    the order of their ids; refused when none of them spent anything, which would leave every
    candidate's metrics undefined."""
    spent = log.spend_between(start, as_of).reindex(shard_buyers, fill_value=0.0)
    actual: np.ndarray = collective.by_customer(spent).to_numpy(float)
    if not actual.any():
        raise DataTooShortError(
            f"none of the {len(actual)} customers with an order by {start.date()} ordered in the "
            f"{days} days after it, the window the candidates are judged on"
        )
    return actual


def btyd_predictions(
    features: pd.DataFrame, buyers: pd.Index, days: int, repeats: np.ndarray
) -> tuple[Predictions, Predictions]:
    """Each converged BTYD candidate's (spend, probability of any purchase) over ``days`` for
    ``buyers``, with a yearly season where ``repeats`` (the days of repeat purchases) show
    one."""
    spend, purchase = {}, {}
    known = features.loc[buyers]
    for name, baseline in converged(features, repeat_days=repeats).items():
        spend[name] = baseline.predict(known, days)["btyd_clv"].to_numpy()
        purchase[name] = 1 - baseline.probability_no_purchase(known, days)
    return spend, purchase


def _network_predictions(
    past: EventLog,
    profiles: Profiles,
    sources: Sources,
    start: datetime,
    buyers: pd.Index,
    config: TrainConfig,
    report: Progress,
    cancelled: Callable[[], bool] | None,
    activity: Activity,
) -> tuple[np.ndarray, np.ndarray]:
    """The network trained on the events before the window (``config``: the window's length
    as its horizon): its (spend, probability of any purchase) for ``buyers``, the spend floored
    as the deep candidate serves it (the blend maps this one: its own floor is left out)."""
    network, _ = train_network(
        past, profiles, sources, start, config, report, cancelled, activity=activity
    )
    examples = network.examples(past, profiles, sources, start)
    clv, purchase = network.floored_network_outputs(examples)
    rows = examples.customers.get_indexer(buyers)  # every buyer has events, so is there
    return clv[rows], purchase[rows]


def _add_blend(
    predictions: Predictions,
    purchases: Predictions,
    metrics: dict[str, Metrics],
    actual: np.ndarray,
    anchor: str,
    days: int,
) -> None:
    """The blend as a candidate: the network's ranking at the ``anchor`` BTYD model's level,
    with the network's purchase probability."""
    blend = QuantileMap.fit(predictions["deep"], predictions[anchor], days)
    predictions["blend"] = blend.apply(predictions["deep"], days)
    purchases["blend"] = purchases["deep"]
    metrics["blend"] = evaluate(actual, predictions["blend"], purchases["blend"])


def serve(
    model: ClvModel,
    judged: Judgement,
    log: EventLog,
    profiles: Profiles,
    sources: Sources,
    as_of: datetime,
) -> Selection:
    """Set what ``model`` serves; returns the selection as it then stands. The blend's quantile
    map is fitted at ``as_of`` whatever serves (``ClvModel.candidates`` reports it), over every
    customer with an order then, between the network and the anchor BTYD model it trained;
    the selection gains the BTYD candidates' seasons there."""
    serving, selection = _converged_choice(model, judged, as_of)
    seasons = {
        name: baseline.season_.summary() if baseline.season_ is not None else None
        for name, baseline in model.baselines.items()
    }
    selection = replace(selection, seasons=seasons)
    examples = model.examples(log, profiles, sources, as_of)
    bought = examples.portrait["has_purchased"].to_numpy() > 0
    days = model.horizon_days
    deep = collective.concatenated(model.network_clv(examples)[bought])
    btyd = model.baselines[serving.anchor].predict(examples.portrait[bought], days)
    anchor = collective.concatenated(btyd["btyd_clv"].to_numpy())
    model.serving = replace(serving, blend=QuantileMap.fit(deep, anchor, days))
    return selection


def _converged_choice(
    model: ClvModel, judged: Judgement, as_of: datetime
) -> tuple[Serving, Selection]:
    """The judged choice among the BTYD models that converged at ``as_of``: a BTYD model chosen
    on the window that does not gives way to one that did (the network's count model always
    does: its plain fit is the network's own), and the selection says so."""
    serving, selection = judged.serving, judged.selection
    fallback = next(iter(model.baselines))
    if serving.anchor not in model.baselines:
        serving = replace(serving, anchor=fallback)
    if serving.served in BTYD_CANDIDATES and serving.served not in model.baselines:
        selection = replace(
            selection, fallback=f"{serving.served} did not converge at {as_of.date()}: {fallback}"
        )
        serving = replace(serving, served=fallback)
    return serving, selection
