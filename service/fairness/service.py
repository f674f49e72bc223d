"""The fairness report: a backtest at a cut-off T with two models, one trained with every
profile attribute and one without the protected ones (``CLV_FAIRNESS_ATTRIBUTES``), both judged
per group on what every customer spent in (T, T + H].

Both models share one training configuration, the data and the seed, so what differs between
them is the protected attributes alone. Computing it trains two models, so it runs as a job (or
``clv report fairness``) and is stored (``reports``, kind ``fairness``); the API serves the
latest.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy.orm import Session, sessionmaker

from service.config import Settings
from service.errors import InvalidRequestError, NotFoundError, refuse_future
from service.events import repository as events
from service.fairness.audit import INTERVAL, audit
from service.fairness.charts import fairness_png
from service.fairness.defaults import DEFAULT_EPOCHS, DEFAULT_HORIZON_DAYS
from service.fairness.schemas import (
    FairnessReportRead,
    FairnessRequest,
)
from service.jobs import service as jobs
from service.jobs.kinds import JobKind
from service.jobs.schemas import JobRead
from service.ml.artifacts import device_for
from service.ml.examples import EventLog, Profiles
from service.ml.metrics import finite
from service.ml.profile import GROUP
from service.ml.training import Progress, TrainConfig
from service.reports import repository as reports
from service.training import data
from service.training.backtest import refuse_unjudgeable, trained_at

KIND = "fairness"
RUN = "fairness backtest"
MODELS = ("with_protected_attributes", "without_protected_attributes")
NO_REPORT = (
    "no fairness report yet: queue one with POST /v1/reports/fairness (scope admin) or run "
    "clv report fairness"
)


def submit(session: Session, settings: Settings, request: FairnessRequest, actor: str) -> JobRead:
    """Queue the report's computation; a worker runs it (``service.fairness.jobs``). A cut-off
    the events cannot judge (its horizon past them: 422, too few buyers in it: 409) is refused
    now."""
    refuse_future(request.as_of)
    last = events.last_event_at(session)
    if last is None:
        raise InvalidRequestError("no events yet: there is nothing to audit")
    horizon = timedelta(days=request.horizon_days)
    as_of = request.as_of or last - horizon
    refuse_unjudgeable(session, settings, as_of, request.horizon_days, last, run=RUN)
    return jobs.submit(session, JobKind.fairness, request, actor, whole=True)


def latest(session: Session) -> FairnessReportRead:
    report = reports.latest(session, KIND)
    if report is None:
        raise NotFoundError(NO_REPORT)
    return reports.read_as(report, FairnessReportRead)


def latest_chart(session: Session) -> bytes:
    report = reports.latest(session, KIND)
    if report is None or report.chart is None:
        raise NotFoundError(NO_REPORT)
    return report.chart


def store(session_factory: sessionmaker[Session], body: dict[str, Any], chart: bytes) -> int:
    with session_factory() as session, session.begin():
        return reports.save(session, KIND, body, chart=chart).id


def compute(
    session_factory: sessionmaker[Session],
    settings: Settings,
    *,
    as_of: datetime | None = None,
    horizon_days: int = DEFAULT_HORIZON_DAYS,
    epochs: int = DEFAULT_EPOCHS,
    config: TrainConfig | None = None,
    progress: Progress | None = None,
    cancelled: Callable[[], bool] | None = None,
) -> tuple[dict[str, Any], bytes]:
    """(report body, PNG chart). ``as_of`` defaults to the latest cut-off whose whole horizon
    is in the data; ``config`` is the training configuration of both models (its horizon,
    epochs, device and excluded attributes are set here)."""
    started = time.monotonic()
    report = progress or (lambda stage, done: None)
    report("reading events and profiles", 0.0)
    log, as_of = _log_and_cut_off(session_factory, settings, as_of, horizon_days)
    with session_factory() as session:
        profiles, sources = data.profiles(session, settings)
    base = replace(
        config or TrainConfig(horizon_days),
        horizon_days=horizon_days,
        epochs=epochs,
        device=device_for(settings.device),
    )
    protected = tuple(settings.fairness_attributes)
    body: dict[str, Any] = {
        "as_of": as_of.isoformat(),
        "horizon_days": horizon_days,
        "epochs": epochs,
        "bootstrap": {
            "samples": settings.fairness_bootstrap,
            "seed": base.seed,
            "quantiles": list(INTERVAL),
        },
    }
    for number, name in enumerate(MODELS):
        excluded = protected if name == "without_protected_attributes" else ()

        def step(stage: str, done: float, number: int = number, name: str = name) -> None:
            report(f"{name.replace('_', ' ')}: {stage}", 0.02 + 0.48 * (number + done))

        body[name] = _audited_model(
            log,
            profiles,
            sources,
            as_of,
            replace(base, excluded_attributes=excluded),
            settings,
            body,
            step,
            cancelled,
        )
    report("drawing the chart", 0.99)
    body["seconds"] = round(time.monotonic() - started, 1)
    body = finite(body)
    return body, fairness_png(body)


def _log_and_cut_off(
    session_factory: sessionmaker[Session],
    settings: Settings,
    as_of: datetime | None,
    horizon_days: int,
) -> tuple[EventLog, datetime]:
    """The events and the cut-off, refusing one the backtest refuses: its horizon past the data
    (with two days of slack) or holding too few buyers (``refuse_unjudgeable``)."""
    until = as_of + timedelta(days=horizon_days) if as_of else datetime.now(UTC)
    with session_factory() as session:
        log = data.event_log(session, until)
        last = datetime.fromtimestamp(int(log.events["seconds"].max()), UTC)
        cut_off = as_of or last - timedelta(days=horizon_days)
        refuse_unjudgeable(session, settings, cut_off, horizon_days, last, run=RUN)
    return log, cut_off


def _audited_model(
    log: EventLog,
    profiles: Profiles,
    sources: dict[str, set[str]],
    as_of: datetime,
    config: TrainConfig,
    settings: Settings,
    body: dict[str, Any],
    progress: Progress,
    cancelled: Callable[[], bool] | None,
) -> dict[str, Any]:
    """Train one model at ``as_of``, score everyone there and audit it against their spend in
    the horizon. The first call records the population in ``body`` (the second sees the same)."""
    model, examples = trained_at(log, profiles, sources, as_of, config, progress, cancelled)
    predicted = model.predict(examples)["clv"].to_numpy()
    actual = np.asarray(examples.labels, dtype=float)
    values = {
        attribute: [profiles.get(customer, {}).get(attribute) for customer in examples.customers]
        for attribute in settings.fairness_attributes
    }
    present = [a for a, found in values.items() if any(v is not None for v in found)]
    body.setdefault("customers", len(actual))
    body.setdefault("attributes", present)
    body.setdefault("absent_attributes", [a for a in values if a not in present])
    result = audit(
        actual,
        predicted,
        {a: values[a] for a in present},
        bootstrap=settings.fairness_bootstrap,
        seed=config.seed,
    )
    features = [d.name for d in model.pipeline.definitions() if d.group == GROUP]
    return {
        "excluded_attributes": sorted(config.excluded_attributes),
        "profile_features": features,
        **result,
    }
