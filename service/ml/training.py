"""Training: the candidates judged on a time-later window, then the network on rolling cut-offs.

``train`` first judges every candidate (``service.ml.selection``) on the window before T: the
BTYD models and a network fitted on the events before it, compared on what customers then spent.
Then it trains the network on everything up to T as below, refits the BTYD models at T, and sets
what serves.

For an as-of time T and a horizon H: examples at cut-offs T - H, T - H - step, ... are labelled
with the spend in the H days after each; fresher ones at cut-offs after T - H with the spend up to
T (shorter windows; the horizon is an input of the network). Features at a cut-off use only events
at or before it. A fifth of the customers is held out of every window: training stops early when
their loss stops improving, and the level is calibrated on them at the latest full window.
When the data are too short for labels at H, the network is trained at the longest horizon they
allow and carried to H (see ``ClvModel``); when they cannot support even ``MIN_HORIZON_DAYS``,
``DataTooShortError`` says what is needed.
"""

from __future__ import annotations

import copy
import math
import random
import zlib
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import torch

from service.ml.activity import Activity, day_number
from service.ml.btyd.base import ConvergenceError
from service.ml.btyd.baseline import BtydBaseline
from service.ml.clv_model import ClvModel, signed_log
from service.ml.examples import EventLog, Examples, Profiles, Sources, build
from service.ml.explain import summarise
from service.ml.features import behaviour_features
from service.ml.insufficient import InsufficientDataError, require_events, require_orders
from service.ml.losses import (
    ziln_initial_logits,
    ziln_loss,
    ziln_mean,
)
from service.ml.metrics import evaluate, finite
from service.ml.nets import create_model, output_layer
from service.ml.portrait import FeaturePipeline
from service.ml.profile import without_attributes
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
from service.ml.sequences import channel_names

MIN_HORIZON_DAYS = 28
MIN_VALIDATION_BUYERS = 10
Progress = Callable[[str, float], None]  # (stage, fraction done)


class DataTooShortError(InsufficientDataError):
    """The data span too little time (or hold too few customers) for the windows training
    needs; the message says how much is needed."""


class TrainingCancelledError(RuntimeError):
    pass


@dataclass(frozen=True)
class TrainConfig:
    horizon_days: int
    architecture: str = "gru_ziln"
    hidden: int = 32
    dropout: float = 0.1
    sequence_length: int = 32
    cutoffs: int = 4  # full-horizon cut-offs before the latest one
    cutoff_step_days: int = 45
    partial_step_days: int = 90  # 0: no partial windows after the latest full one
    validation_share: float = 0.2  # customers held out of training, validated at the latest cut-off
    min_history_days: int = 60
    epochs: int = 25
    patience: int = 3
    batch_size: int = 512
    learning_rate: float = 2e-3
    weight_decay: float = 1e-5
    count_model: str = "bgnbd"
    text_components: int = 8
    seed: int = 0
    device: str = "cpu"
    excluded_attributes: tuple[str, ...] = ()  # profile attributes the model never sees


def _seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@dataclass(frozen=True)
class Window:
    """Training examples at ``cutoff`` labelled with the spend in the ``days`` after it."""

    cutoff: datetime
    days: int


def plan_windows(first: datetime, as_of: datetime, config: TrainConfig) -> tuple[int, list[Window]]:
    """(longest horizon the labels allow, windows). First the full-horizon windows, from the
    latest (cut-off T - horizon: the validation window) back one ``cutoff_step_days`` at a time;
    then the fresher partial windows (c, T] after it, ``partial_step_days`` apart, each at least
    ``MIN_HORIZON_DAYS`` long. Without the partial windows nothing would show the network the
    oldest and longest-idle customers of T (at T - horizon the shop was younger), and it would
    extrapolate for them."""
    available = (as_of - first).days - config.min_history_days
    horizon = min(config.horizon_days, available)
    if horizon < MIN_HORIZON_DAYS:
        needed = config.min_history_days + MIN_HORIZON_DAYS
        raise DataTooShortError(
            f"the data span {(as_of - first).days} days up to {as_of.date()}; training needs at "
            f"least {needed} ({config.min_history_days} of history and {MIN_HORIZON_DAYS} of "
            "outcomes)"
        )
    latest = as_of - timedelta(days=horizon)
    earliest = first + timedelta(days=config.min_history_days)
    full = [
        Window(latest - timedelta(days=k * config.cutoff_step_days), horizon)
        for k in range(config.cutoffs + 1)
    ]
    partial = (
        [
            Window(as_of - timedelta(days=days), days)
            for days in range(
                horizon - config.partial_step_days, MIN_HORIZON_DAYS - 1, -config.partial_step_days
            )
        ]
        if config.partial_step_days
        else []
    )
    return horizon, [w for w in full if w.cutoff >= earliest] + partial


def train(
    log: EventLog,
    profiles: Profiles,
    sources: Sources,
    as_of: datetime,
    config: TrainConfig,
    progress: Progress | None = None,
    cancelled: Callable[[], bool] | None = None,
    *,
    start_from: ClvModel | None = None,
) -> ClvModel:
    """A model trained on the events up to ``as_of``, serving the candidate the selection rule
    picked on a time-later window (``service.ml.selection``). A warm start (``start_from``, the
    learning loop) fine-tunes the network and keeps the choice of the model it starts from (what
    serves, the anchor, the interval bands; the blend's map is refitted to the new network), its
    selection figures marked inherited: the loop itself judges it against the champion on a
    holdout."""
    report = progress or (lambda stage, done: None)
    log = log.until(as_of)
    require_events(log.events)
    activity = log.activity()
    require_orders(activity.days)
    plan_windows(log.first_moment, as_of, config)  # too short a span: says how long is needed
    if start_from is not None:
        if start_from.serving is None:
            raise DataTooShortError("the model to start from has no serving choice; retrain")
        inherited = {**start_from.info.get("validation", {}), "inherited": True}
        inherited.pop("held_out", None)
        judged = Judgement(start_from.serving, inherited)
        model = _train_network(
            log,
            profiles,
            sources,
            as_of,
            config,
            report,
            cancelled,
            start_from=start_from,
            activity=activity,
        )
    else:
        judged = _judge(log, profiles, sources, as_of, config, _part(report, 0.0, 0.45), cancelled)
        model = _train_network(
            log,
            profiles,
            sources,
            as_of,
            config,
            _part(report, 0.45, 1.0),
            cancelled,
            activity=activity,
        )
    _serve(model, judged, log, profiles, sources, as_of)
    report("done", 1.0)
    return model


def _part(report: Progress, start: float, end: float) -> Progress:
    """Progress of one stage mapped onto its share of the whole."""
    return lambda stage, done: report(stage, start + (end - start) * done)


@dataclass(frozen=True)
class Judgement:
    """What the time-later window decided (``serving``) and the figures it decided on."""

    serving: Serving
    validation: dict[str, Any]


def _judge(
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
    days = selection_window(log.first_moment, as_of, config.horizon_days, config.min_history_days)
    start = as_of - timedelta(days=days)
    past = log.until(start)
    past_activity = past.activity()
    features = behaviour_features(past_activity.days, day_number(start))
    buyers = features.index[features["has_purchased"] > 0] if len(features) else pd.Index([])
    if len(buyers) < MIN_VALIDATION_BUYERS:
        raise DataTooShortError(
            f"{len(buyers)} customers have an order by {start.date()}, the start of the "
            f"{days}-day window the candidates are judged on; at least {MIN_VALIDATION_BUYERS} "
            "are needed"
        )
    actual = log.spend_between(start, as_of).reindex(buyers, fill_value=0.0).to_numpy(float)
    if not actual.any():
        raise DataTooShortError(
            f"none of the {len(buyers)} customers with an order by {start.date()} ordered in the "
            f"{days} days after it, the window the candidates are judged on"
        )
    predictions, purchases = _btyd_predictions(features, buyers, days)
    notes = {}
    try:
        report(f"training the network on the events up to {start.date()}", 0.0)
        network = _train_network(
            log,
            profiles,
            sources,
            start,
            replace(config, horizon_days=days),
            report,
            cancelled,
            activity=past_activity,
        )
        examples = network.examples(past, profiles, sources, start)
        clv, purchase = network.network_outputs(examples)
        rows = examples.customers.get_indexer(buyers)  # every buyer has events, so is there
        predictions["deep"], purchases["deep"] = clv[rows], purchase[rows]
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
        blend = QuantileMap.fit(predictions["deep"], predictions[anchor], days)
        predictions["blend"] = blend.apply(predictions["deep"], days)
        purchases["blend"] = purchases["deep"]
        metrics["blend"] = evaluate(actual, predictions["blend"], purchases["blend"])
    served, reasons = choose(metrics)
    bands = IntervalBands.fit(predictions[served], actual, days)
    low, _, high = bands.apply(predictions[served], days)
    validation = {
        "served": served,
        "rule": RULE,
        "window": {"from": start.isoformat(), "to": as_of.isoformat(), "days": days},
        "customers": len(buyers),
        "candidates": finite(metrics),
        "reasons": {**reasons, **notes},
        "p10_p90_coverage": float(np.mean((actual >= low) & (actual <= high))),
    }
    return Judgement(Serving(served, anchor, bands), validation)


def _btyd_predictions(
    features: pd.DataFrame, buyers: pd.Index, days: int
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Each converged BTYD candidate's (spend, probability of any purchase) over ``days`` for
    ``buyers``."""
    spend, purchase = {}, {}
    known = features.loc[buyers]
    for name, baseline in _converged(features).items():
        spend[name] = baseline.predict(known, days)["btyd_clv"].to_numpy()
        purchase[name] = 1 - baseline.probability_no_purchase(known, days)
    return spend, purchase


def _serve(
    model: ClvModel,
    judged: Judgement,
    log: EventLog,
    profiles: Profiles,
    sources: Sources,
    as_of: datetime,
) -> None:
    """Set what ``model`` serves. The blend's quantile map is fitted at ``as_of`` whatever serves
    (``ClvModel.candidates`` reports it), over every customer with an order then, between the
    network and the anchor BTYD model it trained. A BTYD model chosen on the window that does not
    converge at ``as_of`` gives way to the network's own (which always does), and says so."""
    serving, validation = judged.serving, dict(judged.validation)
    fallback = next(iter(model.baselines))  # the network's own BTYD model: it converged
    if serving.anchor not in model.baselines:
        serving = replace(serving, anchor=fallback)
    if serving.served in BTYD_CANDIDATES and serving.served not in model.baselines:
        validation["fallback"] = f"{serving.served} did not converge at {as_of.date()}: {fallback}"
        serving = replace(serving, served=fallback)
    examples = model.examples(log, profiles, sources, as_of)
    bought = examples.portrait["has_purchased"].to_numpy() > 0
    days = model.horizon_days
    deep = model.network_clv(examples)[bought]
    btyd = model.baselines[serving.anchor].predict(examples.portrait[bought], days)
    model.serving = replace(serving, blend=QuantileMap.fit(deep, btyd["btyd_clv"].to_numpy(), days))
    model.info["validation"] = {
        **validation,
        "held_out": model.info["validation"],
        "omitted_feature_groups": dict(model.pipeline.omitted_),
    }


def _train_network(
    log: EventLog,
    profiles: Profiles,
    sources: Sources,
    as_of: datetime,
    config: TrainConfig,
    report: Progress,
    cancelled: Callable[[], bool] | None = None,
    *,
    start_from: ClvModel | None = None,
    activity: Activity | None = None,
) -> ClvModel:
    """The network trained on the events up to ``as_of``, with the BTYD baselines refitted
    there; what it serves is set by ``train``. ``activity``: the log's aggregates up to
    ``as_of``, when the caller has them already (aggregating is the costly part). With
    ``start_from`` (warm start, the learning loop's fine-tuning) the network starts from that
    model's weights and keeps its feature pipeline and scaler, so the weights keep meaning what
    they learnt; only the windows with the newest labels are used (``_newest_windows``), so it
    learns what is new, and its level is recalibrated on them."""
    _seed(config.seed)
    profiles = without_attributes(profiles, config.excluded_attributes)
    log = log.until(as_of)
    horizon, windows = plan_windows(log.first_moment, as_of, config)
    if start_from is not None:
        windows = _newest_windows(windows, horizon, start_from)
    report("fitting the feature pipeline", 0.02)
    activity = log.activity() if activity is None else activity
    pipeline = (
        start_from.pipeline
        if start_from is not None
        else FeaturePipeline(config.text_components, config.seed).fit(activity, profiles, sources)
    )
    sets: list[Examples] = []
    for number, window in enumerate(windows):
        cutoff = window.cutoff
        report(f"building examples at {cutoff.date()}", 0.05 + 0.25 * number / len(windows))
        past = log.until(cutoff).activity()
        btyd = _fit_btyd(past, cutoff, config)
        sets.append(
            build(
                log,
                profiles,
                sources,
                pipeline,
                btyd,
                cutoff,
                window.days,
                config.sequence_length,
                label_days=window.days,
                activity=past,
            )
        )
    held_out, training = _split(sets, config)
    validation = held_out[0]  # the latest full-horizon window: the reported metrics
    _check_enough_customers(validation, training, windows[0].cutoff)
    feature_names = list(validation.tabular.columns)
    if start_from is not None:
        mean, std = start_from.scaler_mean, start_from.scaler_std
        architecture, net_config = start_from.architecture, dict(start_from.net_config)
        net = copy.deepcopy(start_from.float_net or start_from.net).to(config.device)
    else:
        logged = signed_log(np.concatenate([t.tabular.to_numpy(np.float64) for t in training]))
        mean, std = logged.mean(axis=0), logged.std(axis=0)
        std[std < 1e-9] = 1.0
        architecture = config.architecture
        net_config = {
            "event_features": len(channel_names(pipeline.categories_)),
            "tabular_features": len(feature_names),
            "hidden": config.hidden,
            "dropout": config.dropout,
        }
        net = create_model(architecture, **net_config).to(config.device)
    baselines = _fit_baselines(activity, as_of, config)
    model = ClvModel(
        net=net,
        architecture=architecture,
        net_config=net_config,
        pipeline=pipeline,
        btyd=baselines[config.count_model],
        baselines=baselines,
        feature_names=feature_names,
        scaler_mean=mean,
        scaler_std=std,
        sequence_length=config.sequence_length,
        horizon_days=config.horizon_days,
        trained_horizon_days=horizon,
        shortest_horizon_days=min(w.days for w in windows),
        device=config.device,
    )
    history = _fit_network(
        model, training, held_out, config, report, cancelled, warm=start_from is not None
    )
    report("calibrating", 0.97)
    levels = [
        (float(ziln_mean(model.logits(held)).sum()), float(np.sum(held.labels)))  # type: ignore[arg-type]
        for held in held_out
    ]
    model.log_calibration = _log_calibration(levels)
    model.background = summarise(
        validation.sequences, model.tabular_tensor(validation.tabular).numpy(), seed=config.seed
    )
    validation_metrics = _validation_metrics(model, validation)
    model.info = {
        "as_of": as_of.isoformat(),
        "data_from": log.first_moment.isoformat(),
        "windows": [
            {
                "cutoff": w.cutoff.isoformat(),
                "days": w.days,
                "held_out_predicted": round(level[0], 2),
                "held_out_actual": round(level[1], 2),
            }
            for w, level in zip(windows, levels, strict=True)
        ],
        "validation_cutoff": windows[0].cutoff.isoformat(),
        "training_examples": int(sum(len(t.customers) for t in training)),
        "validation_examples": len(validation.customers),
        "history": history,
        "calibration_factor": math.exp(model.log_calibration),
        "config": asdict(config),
        "excluded_attributes": sorted(config.excluded_attributes),
        "validation": validation_metrics,
        "warm_start": start_from is not None,
    }
    return model


def _newest_windows(windows: list[Window], horizon: int, start_from: ClvModel) -> list[Window]:
    """What a warm start learns from: the latest full-horizon window and the fresher partial
    ones after it, the newest behaviour only (older windows would pull the level back to what
    the model already knew; after a shift in behaviour that is exactly what must change).
    Refused when they hold nothing ``start_from`` has not seen."""
    newest = [w for w in windows if w is windows[0] or w.days < horizon]
    seen_until = start_from.info.get("as_of")
    if seen_until is not None:
        end = datetime.fromisoformat(seen_until)
        if newest[0].cutoff + timedelta(days=newest[0].days) <= end:
            raise DataTooShortError(f"there are no events after {end.date()}, its training data")
    return newest


def _log_calibration(levels: list[tuple[float, float]]) -> float:
    """The shift of mu that makes predicted spend add up to actual spend, given (predicted,
    actual) sums on the held-out customers of every window. A network's level is unstable (the
    lognormal mean moves with sigma squared) and differs from window to window; all held-out
    windows together pin it down better than any one of them (the latest full window alone erred
    by up to 8% at T in the backtests)."""
    predicted, actual = sum(p for p, _ in levels), sum(a for _, a in levels)
    return float(np.clip(math.log(max(actual, 1e-9) / max(predicted, 1e-9)), -1, 1))


def _validation_metrics(model: ClvModel, validation: Examples) -> dict[str, Any]:
    """The model against the BTYD baseline on the validation window's customers with an order
    by the cut-off (the BTYD models' domain), at the horizon the labels cover."""
    buyers = validation.portrait["has_purchased"].to_numpy() > 0
    actual = np.asarray(validation.labels)[buyers]
    logits = model.logits(validation)
    return {
        "deep": evaluate(actual, ziln_mean(logits).numpy()[buyers]),
        "btyd": evaluate(actual, validation.tabular["btyd_clv"].to_numpy()[buyers]),
    }


def _fit_btyd(activity: Activity, cutoff: datetime, config: TrainConfig) -> BtydBaseline:
    """The network's own BTYD model (its outputs are features) at a cut-off."""
    features = behaviour_features(activity.days, day_number(cutoff))
    return _required(_converged(features, (config.count_model,)), config, cutoff)


def _fit_baselines(
    activity: Activity, cutoff: datetime, config: TrainConfig
) -> dict[str, BtydBaseline]:
    """Every BTYD candidate at the cut-off, the network's own (``count_model``) first: it must
    converge; another that does not is left out."""
    baselines = _converged(behaviour_features(activity.days, day_number(cutoff)))
    own = _required(baselines, config, cutoff)
    return {config.count_model: own, **baselines}


def _converged(
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


def _split(sets: list[Examples], config: TrainConfig) -> tuple[list[Examples], list[Examples]]:
    """(validation, training) per window: a share of the customers is held out of every window.
    Holding out customers, not only time, keeps the partial windows (which overlap the latest
    full window's months) from leaking into its validation."""
    held = [_held_out(examples.customers, config) for examples in sets]
    validation = [e.subset(h) for e, h in zip(sets, held, strict=True)]
    return validation, [e.subset(~h) for e, h in zip(sets, held, strict=True)]


def _check_enough_customers(
    validation: Examples, training: list[Examples], cutoff: datetime
) -> None:
    """Refuse a shop too small to validate on: the metrics and early stopping need buyers among
    the held-out customers, and training needs someone left."""
    buyers = int((validation.portrait["has_purchased"].to_numpy() > 0).sum())
    if buyers < MIN_VALIDATION_BUYERS or not sum(len(t.customers) for t in training):
        raise DataTooShortError(
            f"{buyers} of the customers held out for validation have an order by "
            f"{cutoff.date()}; training needs at least {MIN_VALIDATION_BUYERS} "
            f"(about {MIN_VALIDATION_BUYERS * 5} customers with an order in all)"
        )


def _held_out(customers: pd.Index, config: TrainConfig) -> np.ndarray:
    """A stable pseudo-random share of customers: the same customer is held out at every
    cut-off, whatever else the data hold."""
    buckets = np.array([zlib.crc32(f"{config.seed}:{c}".encode()) % 1000 for c in customers])
    held: np.ndarray = buckets < config.validation_share * 1000
    return held


def _tensors(model: ClvModel, examples: list[Examples]) -> tuple[torch.Tensor, ...]:
    sequences = torch.as_tensor(np.concatenate([e.sequences for e in examples]))
    tabular = torch.cat([model.tabular_tensor(e.tabular) for e in examples])
    labels = torch.as_tensor(np.concatenate([e.labels for e in examples]))
    return sequences, tabular, labels


def _fit_network(
    model: ClvModel,
    training: list[Examples],
    validation: list[Examples],
    config: TrainConfig,
    report: Progress,
    cancelled: Callable[[], bool] | None,
    warm: bool = False,
) -> list[dict[str, float]]:
    """Minibatch AdamW with early stopping on the held-out customers. A warm start keeps the
    output layer it was given (re-initialising it would throw away what the weights know) and
    keeps its starting weights unless an epoch beats them on the held-out customers."""
    net, device = model.net, config.device
    train_seq, train_tab, train_y = _tensors(model, training)
    val_seq, val_tab, val_y = _tensors(model, validation)
    if not warm:
        with torch.no_grad():
            output_layer(net).bias.copy_(ziln_initial_logits(train_y))
    optimizer = torch.optim.AdamW(
        net.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
    )
    generator = torch.Generator().manual_seed(config.seed)
    best, best_state, waited, history = math.inf, None, 0, []
    if warm:  # the weights it starts from are a candidate too: fine-tuning must beat them
        best = _loss(net, val_seq, val_tab, val_y, device)
        best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
    for epoch in range(config.epochs):
        if cancelled and cancelled():
            raise TrainingCancelledError("training was cancelled")
        net.train()
        order = torch.randperm(len(train_y), generator=generator)
        total = 0.0
        for start in range(0, len(order), config.batch_size):
            batch = order[start : start + config.batch_size]
            optimizer.zero_grad()
            logits = net(train_seq[batch].to(device), train_tab[batch].to(device))
            loss = ziln_loss(train_y[batch].to(device), logits).mean()
            loss.backward()  # type: ignore[no-untyped-call]
            torch.nn.utils.clip_grad_norm_(net.parameters(), 5.0)
            optimizer.step()
            total += loss.item() * len(batch)
        validation_loss = _loss(net, val_seq, val_tab, val_y, device)
        history.append(
            {
                "epoch": epoch + 1,
                "train_loss": total / len(order),
                "validation_loss": validation_loss,
            }
        )
        report(
            f"epoch {epoch + 1}: validation loss {validation_loss:.4f}",
            0.3 + 0.65 * (epoch + 1) / config.epochs,
        )
        if validation_loss < best - 1e-4:
            best, waited = validation_loss, 0
            best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
        else:
            waited += 1
            if waited >= config.patience:
                break
    if best_state is not None:
        net.load_state_dict(best_state)
    return history


@torch.no_grad()
def _loss(
    net: torch.nn.Module,
    sequences: torch.Tensor,
    tabular: torch.Tensor,
    labels: torch.Tensor,
    device: str,
) -> float:
    net.eval()
    total = 0.0
    for start in range(0, len(labels), 8192):
        logits = net(
            sequences[start : start + 8192].to(device), tabular[start : start + 8192].to(device)
        )
        total += float(ziln_loss(labels[start : start + 8192].to(device), logits).sum())
    return total / max(len(labels), 1)


def describe(model: ClvModel) -> dict[str, Any]:
    return {"architecture": model.architecture, **model.info}
