"""The drift check: the champion's training population against the customers it scores now.

``check_drift`` computes a check (``service.ml.drift.populations``), stores it (``reports``, kind
``drift``, subject the champion's version) and, when something drifted and
``CLV_LEARNING_ON_DRIFT`` is set, queues the learning job in the same transaction. Workers run
it as the ``drift`` job, which the scheduler queues every ``CLV_MONITOR_INTERVAL_MINUTES`` and
``POST /v1/monitoring/drift`` on demand; ``clv drift`` runs it in the CLI's process. The API and
``/metrics`` serve the latest stored check, so every process reports the same.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker

from service.config import Settings
from service.drift.schemas import (
    DriftCheckRequest,
    DriftReportBody,
    DriftReportRead,
    FeatureDriftRead,
    PopulationRead,
    PurchaseRateDriftRead,
    SegmentDriftRead,
    ShiftRead,
    ThresholdsRead,
)
from service.errors import InvalidRequestError, NotFoundError, refuse_future
from service.jobs import service as jobs
from service.jobs.kinds import JobKind
from service.jobs.schemas import JobRead
from service.learning.schemas import Trigger
from service.learning.triggers import request_learning
from service.ml.artifacts import device_for
from service.ml.drift.populations import EXCLUDED_GROUPS, DriftResult, Population, check, population
from service.ml.drift.statistics import MIN_SEGMENT_Z, PurchaseRate, Shift, Thresholds
from service.ml.training import Progress
from service.model_versions import repository as versions
from service.model_versions.service import get_version
from service.model_versions.store import load_version
from service.reports import repository as reports
from service.reports.models import Report
from service.training import data
from service.webhooks import service as webhooks

KIND = "drift"
NO_REPORT = (
    "no drift check yet: queue one with POST /v1/monitoring/drift (scope admin) or run clv drift"
)
NO_CHAMPION = "no champion: drift is measured against the champion's training data; train one"


def thresholds(settings: Settings) -> Thresholds:
    return Thresholds(
        psi=settings.drift_psi_threshold,
        ks=settings.drift_ks_threshold,
        purchase_rate=settings.drift_purchase_rate_threshold,
        min_segment_customers=settings.drift_min_segment_customers,
    )


def submit(session: Session, request: DriftCheckRequest, actor: str) -> JobRead:
    """Queue a check (or return the one already queued or running: checks do not pile up)."""
    refuse_future(request.as_of)
    champion = versions.aliases(session).get("champion")
    if champion is None:
        raise NotFoundError(NO_CHAMPION)
    data_to = get_version(session, champion).data_to
    if request.as_of is not None and request.as_of < data_to:
        raise InvalidRequestError(
            f"as_of {request.as_of.isoformat()} is before the end of champion {champion}'s "
            f"training data ({data_to.isoformat()}): there is nothing to compare yet"
        )
    return jobs.submit_once(session, JobKind.drift, request, actor, whole=True)


def latest_report(session: Session) -> Report | None:
    return reports.latest(session, KIND)


def latest(session: Session) -> DriftReportRead:
    report = latest_report(session)
    if report is None:
        raise NotFoundError(NO_REPORT)
    return read(report)


def read(report: Report) -> DriftReportRead:
    return reports.read_as(report, DriftReportRead)


def _notification(report: DriftReportRead) -> dict[str, object]:
    """What the ``drift.detected`` webhook says: the check and why, not its whole body."""
    return {
        "report_id": report.id,
        "model_version": report.model_version,
        "as_of": report.as_of.isoformat(),
        "reasons": report.reasons,
        "learning_job_id": report.learning_job_id,
    }


def check_drift(
    session_factory: sessionmaker[Session],
    settings: Settings,
    *,
    as_of: datetime | None = None,
    actor: str,
    progress: Progress | None = None,
) -> DriftReportRead:
    """Compare the champion's training population with the customers active before ``as_of``
    (default now), store the report and, when it found drift and ``CLV_LEARNING_ON_DRIFT`` is
    set, queue the learning job (unless one is queued or running). Reads every event up to
    ``as_of``; a few seconds for 5,000 customers (see bench/drift.py for 50,000)."""
    started = time.monotonic()
    step = progress or (lambda stage, done: None)
    refuse_future(as_of)
    moment = as_of or datetime.now(UTC)
    window = settings.drift_window_days
    step("loading the champion and the events", 0.0)
    with session_factory() as session:
        if "champion" not in versions.aliases(session):
            raise NotFoundError(NO_CHAMPION)
        version, model = load_version(
            session, settings.model_dir, "champion", device_for(settings.device)
        )
        data_to = get_version(session, version).data_to
        if moment < data_to:
            raise InvalidRequestError(
                f"as_of {moment.isoformat()} is before the end of champion {version}'s training "
                f"data ({data_to.isoformat()}), which is the reference"
            )
        log = data.event_log(session, moment)
        profiles, sources = data.profiles(session, settings)
    step("describing the reference population", 0.3)
    reference = population(log, profiles, sources, model, data_to, window)
    step("describing the current population", 0.6)
    current = population(log, profiles, sources, model, moment, window)
    for found in (reference, current):
        if found.orders.empty:  # nothing to compare: the check would only say "-100%"
            raise InvalidRequestError(
                f"no customer has an event in the {window} days before {found.moment.isoformat()}"
            )
    step("comparing", 0.9)
    result = check(reference, current, model, profiles, window, thresholds(settings))
    excluded = [d.name for d in model.pipeline.definitions() if d.group in EXCLUDED_GROUPS]
    with session_factory() as session, session.begin():
        learning_job = None
        if result.drifted and settings.learning_on_drift:
            queued = request_learning(session, Trigger.drift, actor, settings)
            learning_job = queued.id if queued is not None else None
        body = _body(result, version, excluded, learning_job, time.monotonic() - started)
        stored = read(reports.save(session, KIND, body.model_dump(mode="json"), subject=version))
        if result.drifted:
            webhooks.notify(session, settings, "drift.detected", _notification(stored))
    step("stored", 1.0)  # after the commit: a job's progress is written in a transaction of its own
    return stored


def _body(
    result: DriftResult,
    version: str,
    excluded: list[str],
    learning_job: int | None,
    seconds: float,
) -> DriftReportBody:
    limits = result.thresholds
    return DriftReportBody(
        model_version=version,
        as_of=result.current.moment,
        window_days=result.window_days,
        drifted=result.drifted,
        reasons=result.reasons,
        reference=_population(result.reference, result.reference_rate, result.window_days),
        current=_population(result.current, result.current_rate, result.window_days),
        thresholds=ThresholdsRead(
            psi=limits.psi,
            ks=limits.ks,
            purchase_rate=limits.purchase_rate,
            min_segment_customers=limits.min_segment_customers,
            min_segment_z=MIN_SEGMENT_Z,
        ),
        purchase_rate=PurchaseRateDriftRead(
            reference=_round(result.reference_rate.per_customer_30d),
            current=_round(result.current_rate.per_customer_30d),
            change=None if result.rate_change is None else _round(result.rate_change),
            drifted=result.rate_drifted,
        ),
        segments=[
            SegmentDriftRead(
                attribute=segment.attribute,
                level=segment.level,
                reference_customers=segment.reference.customers,
                current_customers=segment.current.customers,
                reference_rate=_round(segment.reference.per_customer_30d),
                current_rate=_round(segment.current.per_customer_30d),
                change=_round(segment.change),
                excess_change=_round(segment.excess_change),
                z=round(max(min(segment.z, 1e6), -1e6), 2),  # JSON has no infinity
                drifted=drifted,
            )
            for segment, drifted in result.segments
        ],
        score=_shift(result.score, result.score_drifted),
        features=[
            FeatureDriftRead(
                feature=drift.feature.name,
                group=drift.feature.group,
                **_shift(drift.shift, drift.drifted).model_dump(),
            )
            for drift in result.features
        ],
        excluded_features=excluded,
        learning_job_id=learning_job,
        seconds=round(seconds, 2),
    )


def _population(found: Population, rate: PurchaseRate, window_days: int) -> PopulationRead:
    return PopulationRead(
        window_from=found.moment - timedelta(days=window_days),
        window_to=found.moment,
        customers=rate.customers,
        orders=rate.orders,
        buyers=rate.buyers,
        orders_per_customer_30d=_round(rate.per_customer_30d),
        share_buying=_round(rate.share_buying),
    )


def _shift(shift: Shift, drifted: bool) -> ShiftRead:
    return ShiftRead(
        psi=_round(shift.psi),
        ks=_round(shift.ks),
        ks_pvalue=float(f"{shift.ks_pvalue:.3g}"),
        reference_mean=_round(shift.reference_mean),
        current_mean=_round(shift.current_mean),
        drifted=drifted,
    )


def _round(value: float) -> float:
    """Four decimals: the figures are read by people and compared with thresholds of 0.1."""
    return round(value, 4)
