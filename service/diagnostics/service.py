"""The BTYD diagnostics report: a purchase-count model fitted twice on the shop's events, once
up to a calibration cut-off (judged on the holdout after it) and once up to ``as_of`` (drawn as
the frequency-recency and probability-alive matrices).

Fitting reads every customer's events, so it runs as a job (or ``clv report btyd``) and is
stored (``reports``, kind ``btyd``); the API serves the latest, and draws each chart from its
numbers on request.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from service.config import Settings
from service.diagnostics.charts import btyd_png
from service.diagnostics.schemas import BtydReportRead, BtydReportRequest, Chart
from service.errors import InvalidRequestError, NotFoundError, refuse_future
from service.events import repository as events
from service.jobs import service as jobs
from service.jobs.kinds import JobKind
from service.jobs.schemas import JobRead
from service.ml.activity import Activity, day_number
from service.ml.btyd.baseline import fit_counts
from service.ml.btyd.diagnostics import calibration, matrices
from service.ml.features import behaviour_features
from service.ml.training import Progress
from service.reports import repository as reports
from service.training import data

KIND = "btyd"
MIN_BUYERS = 20
"""Fewer buyers than this before the calibration cut-off leave the fit's four parameters
undetermined: the report is refused with the reason rather than drawn from noise."""
NO_REPORT = (
    "no BTYD report yet: queue one with POST /v1/reports/btyd (scope admin) or run clv report btyd"
)


def submit(session: Session, settings: Settings, request: BtydReportRequest, actor: str) -> JobRead:
    """Queue the report; a worker computes it (``service.diagnostics.jobs``). An ``as_of`` in
    the future, or a shop without events, is refused now (422); too few buyers by the
    calibration cut-off fail the job with the reason."""
    refuse_future(request.as_of)
    if events.last_event_at(session) is None:
        raise InvalidRequestError("no events yet: there is nothing to fit")
    return jobs.submit(session, JobKind.btyd, request, actor, whole=True)


def compute(
    session_factory: sessionmaker[Session],
    request: BtydReportRequest,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """The report's body. 422 when fewer than ``MIN_BUYERS`` customers bought by the
    calibration cut-off."""
    started = time.monotonic()
    report = progress or (lambda stage, done: None)
    report("reading events", 0.0)
    with session_factory() as session:
        as_of = request.as_of or events.last_event_at(session)
        if as_of is None:
            raise InvalidRequestError("no events yet: there is nothing to fit")
        activity = data.event_log(session, as_of).activity()
    end = as_of - timedelta(days=request.holdout_days)
    full, calibrating = _summary(activity, as_of), _summary(activity, end)
    buyers = calibrating[calibrating["has_purchased"] > 0]
    if len(buyers) < MIN_BUYERS:
        raise InvalidRequestError(
            f"{len(buyers)} customers bought by the calibration cut-off {end.isoformat()} "
            f"(as_of - holdout_days); the fit needs at least {MIN_BUYERS}: a later as_of or a "
            "shorter holdout"
        )
    report(f"fitting {request.count_model} up to the calibration cut-off", 0.4)
    judged = calibration(
        fit_counts(request.count_model, buyers), calibrating, full, request.holdout_days
    )
    report(f"fitting {request.count_model} up to as_of", 0.7)
    counts = fit_counts(request.count_model, full[full["has_purchased"] > 0])
    return {
        "as_of": as_of.isoformat(),
        "calibration_end": end.isoformat(),
        "holdout_days": request.holdout_days,
        "count_model": request.count_model,
        "buyers": int((full["has_purchased"] > 0).sum()),
        "calibration_buyers": len(buyers),
        "calibration": [asdict(row) for row in judged],
        "matrices": asdict(matrices(counts, full, request.holdout_days)),
        "seconds": round(time.monotonic() - started, 1),
    }


def _summary(activity: Activity, moment: datetime) -> Any:
    """The behaviour features (BTYD summary among them) as of ``moment``'s day."""
    day = day_number(moment)
    return behaviour_features(activity.days[activity.days["day"] <= day], day)


def store(session_factory: sessionmaker[Session], body: dict[str, Any]) -> int:
    with session_factory() as session, session.begin():
        return reports.save(session, KIND, body).id


def latest(session: Session) -> BtydReportRead:
    return reports.read_as(_latest(session), BtydReportRead)


def chart(session: Session, name: Chart) -> bytes:
    return btyd_png(_latest(session).body, name)


def _latest(session: Session) -> Any:
    report = reports.latest(session, KIND)
    if report is None:
        raise NotFoundError(NO_REPORT)
    return report
