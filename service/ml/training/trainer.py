"""``train``: the stages in order (check the data, judge the candidates or inherit the
judgement, train the network, set what serves) and the report they leave on the model."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime

from service.ml import collective
from service.ml.clv_model import ClvModel
from service.ml.examples import EventLog, Profiles, Sources
from service.ml.insufficient import require_events, require_orders
from service.ml.training.baselines import fit_candidates
from service.ml.training.config import Progress, TrainConfig
from service.ml.training.judging import inherit, judge, serve
from service.ml.training.network import NetworkFit, train_network
from service.ml.training.report import Selection, TrainingReport, Validation
from service.ml.training.windows import plan_windows

JUDGING_SHARE = 0.45
"""The share of a fresh training's progress that judging the candidates takes (it trains a
network too, on less data)."""


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
    picked on a time-later window (``service.ml.selection``), its ``report`` set. A warm start
    (``start_from``, the learning loop) fine-tunes the network and keeps the choice of the model
    it starts from (what serves, the anchor, the interval bands; the blend's map is refitted to
    the new network), its selection figures marked inherited: the loop itself judges it against
    the champion on a holdout."""
    step = progress or (lambda stage, done: None)
    log = log.until(as_of)
    require_events(log.events)
    activity = log.activity()
    require_orders(activity.days)
    plan_windows(collective.earliest(log.first_moment), as_of, config)  # too short: says how long
    if start_from is not None:
        judged, network_progress = inherit(start_from), step
    else:
        judging = _part(step, 0.0, JUDGING_SHARE)
        judged = judge(log, profiles, sources, as_of, config, judging, cancelled)
        network_progress = _part(step, JUDGING_SHARE, 1.0)
    model, fit = train_network(
        log,
        profiles,
        sources,
        as_of,
        config,
        network_progress,
        cancelled,
        start_from=start_from,
        activity=activity,
    )
    model.baselines = fit_candidates(activity, as_of)
    selection = serve(model, judged, log, profiles, sources, as_of)
    model.training_report = _report(model, fit, selection, log, as_of, config, start_from)
    step("done", 1.0)
    return model


def _part(step: Progress, start: float, end: float) -> Progress:
    """Progress of one stage mapped onto its share of the whole."""
    return lambda stage, done: step(stage, start + (end - start) * done)


def _report(
    model: ClvModel,
    fit: NetworkFit,
    selection: Selection,
    log: EventLog,
    as_of: datetime,
    config: TrainConfig,
    start_from: ClvModel | None,
) -> TrainingReport:
    """Everything the stages recorded, in one place."""
    return TrainingReport(
        as_of=as_of,
        data_from=collective.earliest(log.first_moment),
        windows=fit.windows,
        training_examples=fit.training_examples,
        validation_examples=fit.validation_examples,
        history=fit.history,
        calibration_factor=math.exp(model.log_calibration),
        config=config,
        validation=Validation.of(
            selection, held_out=fit.held_out, omitted=dict(model.pipeline.omitted_)
        ),
        warm_start=start_from is not None,
    )
