"""The learning loop: make a challenger from the newest data, judge it against the champion on
a time-later holdout, promote it only when it proves better, and record every decision.

The holdout is the last ``CLV_LEARNING_HOLDOUT_DAYS`` before ``as_of``: the challenger is
trained on the events up to its start and both models are judged on what customers spent after
it. That is only fair when the champion has not seen those days either, so a run whose champion
was trained later than the holdout's start is skipped (with the date it becomes possible). The
promoted challenger is exactly the model that was judged (not refitted on the holdout days
afterwards), so its recorded metrics are the truth about it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker

from service.config import LearningMode, Settings
from service.errors import (
    ConflictError,
    InvalidRequestError,
    NotFoundError,
    ServiceError,
    refuse_future,
)
from service.jobs import service as jobs
from service.jobs.kinds import JobKind
from service.jobs.schemas import JobRead
from service.learning import repository as learning_repository
from service.learning.evaluation import Holdout, holdout_metrics
from service.learning.models import LearningDecision
from service.learning.policy import PromotionPolicy
from service.learning.schemas import (
    DECISION_IN_BRIEF,
    LearningDecisionRead,
    LearnParams,
    LearnRequest,
    Trigger,
)
from service.ml.artifacts import device_for
from service.ml.clv_model import ClvModel
from service.ml.examples import EventLog, Profiles, Sources
from service.ml.metrics import finite
from service.ml.training import (
    Progress,
    TrainConfig,
    TrainingCancelledError,
)
from service.model_versions import repository as versions
from service.model_versions import service as registry
from service.model_versions.service import ArtifactRefusedError
from service.model_versions.store import load_version
from service.training import data, protected
from service.training import holdout as holdouts
from service.training.holdout import ThinHoldoutError
from service.training.runner import train_or_refuse
from service.webhooks import service as webhooks

logger = logging.getLogger(__name__)

ACTOR = "learning"


class SkippedRunError(Exception):
    """The run cannot judge fairly (or at all); the message says why, and it is recorded."""


def learn(
    session_factory: sessionmaker[Session],
    settings: Settings,
    *,
    trigger: Trigger,
    actor: str,
    as_of: datetime | None = None,
    mode: str | None = None,
    challenger: str | None = None,
    job_id: int | None = None,
    progress: Progress | None = None,
    cancelled: Callable[[], bool] | None = None,
) -> LearningDecisionRead:
    """One run of the loop; returns the decision it stored (promoted, kept or skipped). A run
    that fails (the database, a bug) stores a ``failed`` decision with the error and raises it,
    so every run leaves its trace."""
    report = progress or (lambda stage, done: None)
    holdout = Holdout.ending(as_of or datetime.now(UTC), settings.learning_holdout_days)
    mode = "given" if challenger else (mode or settings.learning_mode.value)
    decision = LearningDecision(
        trigger=trigger.value,
        mode=mode,
        holdout_from=holdout.start,
        holdout_to=holdout.end,
        job_id=job_id,
        actor=actor,
        promoted=False,
    )
    try:
        _judge(session_factory, settings, decision, holdout, challenger, report, cancelled)
    except SkippedRunError as skipped:
        decision.outcome, decision.reasons = "skipped", [str(skipped)]
        logger.info("learning run skipped: %s", skipped)
    except (TrainingCancelledError, ThinHoldoutError):
        raise  # cancelled, or nothing to judge on: no decision
    except Exception as error:
        decision.outcome, decision.reasons = "failed", [f"{type(error).__name__}: {error}"]
        _store(session_factory, settings, decision)
        raise
    return _store(session_factory, settings, decision)


def _store(
    session_factory: sessionmaker[Session], settings: Settings, decision: LearningDecision
) -> LearningDecisionRead:
    """Store the decision, and queue its ``learning.decision`` webhook in the same
    transaction."""
    decision.decided_at = datetime.now(UTC)
    for name in ("champion_metrics", "challenger_metrics", "baseline_metrics"):
        setattr(decision, name, finite(getattr(decision, name)))  # no NaN in JSON
    with session_factory() as session, session.begin():
        stored = LearningDecisionRead.model_validate(learning_repository.add(session, decision))
        webhooks.notify(
            session,
            settings,
            "learning.decision",
            stored.model_dump(mode="json", include=DECISION_IN_BRIEF | {"trigger"}),
        )
        return stored


def _judge(
    session_factory: sessionmaker[Session],
    settings: Settings,
    decision: LearningDecision,
    holdout: Holdout,
    given: str | None,
    report: Progress,
    cancelled: Callable[[], bool] | None,
) -> None:
    device = device_for(settings.device)
    with session_factory() as session:
        champion_version, champion = _champion(session, settings, device)
        decision.champion_version = champion_version
        champion_end = _data_to(session, champion_version)
        _check_unseen(champion_version, champion_end, holdout, settings)
        if given is not None:
            challenger_version, challenger = _given(
                session, settings, given, champion_version, device, holdout
            )
        _refuse_thin(session, settings, holdout, champion_end)
        log = data.event_log(session, holdout.end)
        profiles, sources = data.profiles(session, settings)
    notes: list[str] = []
    if given is None:
        config = _config_of(champion, settings)
        decision.mode, notes = _mode_for(champion, config, decision.mode)
        report(f"training the challenger on the events up to {holdout.start.date()}", 0.0)
        challenger = _train_challenger(
            champion, log, profiles, sources, holdout, config, decision.mode, report, cancelled
        )
    report(f"judging both on {holdout.days} days after {holdout.start.date()}", 0.96)
    metrics = holdout_metrics(
        {"champion": champion, "challenger": challenger}, log, profiles, sources, holdout
    )
    verdict = PromotionPolicy(
        settings.learning_min_gini_gain, settings.learning_calibration_tolerance
    ).decide(metrics["champion"], metrics["challenger"])
    decision.champion_metrics, decision.challenger_metrics = (
        metrics["champion"],
        metrics["challenger"],
    )
    decision.baseline_metrics, decision.reasons = metrics["btyd"], [*notes, *verdict.reasons]
    if given is None:
        with session_factory() as session, session.begin():  # registered whatever comes next
            validation = challenger.report.validation.to_json()
            row = registry.register(session, settings.model_dir, challenger, validation, ACTOR)
            challenger_version = row.version
    decision.challenger_version = challenger_version
    decision.outcome = "kept"
    if verdict.promote:
        _promote(session_factory, settings, decision)
    logger.info(
        "learning: challenger %s %s against %s: %s",
        decision.challenger_version,
        decision.outcome,
        decision.champion_version,
        "; ".join(decision.reasons),
    )


def _promote(
    session_factory: sessionmaker[Session], settings: Settings, decision: LearningDecision
) -> None:
    """Promote, unless the champion changed while the run judged (a person promoted or rolled
    back meanwhile: the challenger was not compared with the new one) or the artifact is
    refused; either way the challenger is kept and the reason recorded."""
    version = str(decision.challenger_version)
    with session_factory() as session, session.begin():
        alias = versions.alias_for_update(session, "champion")
        if alias is None or alias.version != decision.champion_version:
            now = alias.version if alias is not None else "none"
            decision.reasons = [
                *decision.reasons,
                f"not promoted: the champion changed while the run judged (now {now})",
            ]
            return
        try:
            registry.promote(session, settings.model_dir, version, "champion", ACTOR)
        except ServiceError as refused:
            decision.reasons = [*decision.reasons, f"not promoted: {refused.message}"]
            return
    decision.promoted, decision.outcome = True, "promoted"


def submit(session: Session, settings: Settings, request: LearnRequest, actor: str) -> JobRead:
    """Queue a learning run asked for over the API, after every refusal it can get before
    running (a moment in the future, an unfair holdout, a run already queued or running)."""
    refuse_future(request.as_of)
    as_of = request.as_of or datetime.now(UTC)
    refuse_unfair(session, settings, as_of, request.challenger)
    active = jobs.active_job(session, JobKind.learn)
    if active is not None:
        raise ConflictError(
            f"learning job {active.id} is already {active.status}; follow it at "
            f"/v1/jobs/{active.id}"
        )
    params = LearnParams(
        trigger=Trigger.demand, as_of=as_of, mode=request.mode, challenger=request.challenger
    )
    return jobs.submit(session, JobKind.learn, params, actor)


def refuse_unfair(
    session: Session, settings: Settings, as_of: datetime, challenger: str | None
) -> None:
    """What a run as of ``as_of`` would skip, refused when it is asked for (409, 404), so the
    caller learns at once rather than from a skipped decision: no champion, a champion (or a
    given challenger) trained on part of the holdout, a challenger that is the champion, a
    holdout too thin to judge on."""
    try:
        holdout = Holdout.ending(as_of, settings.learning_holdout_days)
    except OverflowError:
        raise InvalidRequestError(f"as_of {as_of.isoformat()} is before any data") from None
    champion = versions.aliases(session).get("champion")
    if champion is None:
        raise ConflictError("there is no champion yet: train one first (POST /v1/models)")
    champion_end = _data_to(session, champion)
    try:
        _check_unseen(champion, champion_end, holdout, settings)
        if challenger is not None:
            found = registry.get_version(session, challenger)  # 404 when there is none
            _check_given(found.version, found.data_to, champion, holdout)
    except SkippedRunError as unfair:
        raise ConflictError(str(unfair)) from None
    _refuse_thin(session, settings, holdout, champion_end)


def _refuse_thin(
    session: Session, settings: Settings, holdout: Holdout, champion_end: datetime
) -> None:
    """Refuse (``ThinHoldoutError``, 409) a holdout with too few known customers or buyers: its
    metrics would be undefined, and a decision on them meaningless, so none is stored."""
    holdouts.refuse_thin(
        session,
        settings,
        holdout.start,
        holdout.end,
        run="learning run",
        not_before=champion_end + timedelta(days=settings.learning_holdout_days),
    )


def _champion(session: Session, settings: Settings, device: str) -> tuple[str, ClvModel]:
    try:
        return load_version(session, settings.model_dir, "champion", device)
    except NotFoundError:
        raise SkippedRunError(
            "there is no champion yet: train one first (POST /v1/models)"
        ) from None
    except ArtifactRefusedError as refused:
        raise SkippedRunError(f"the champion cannot be loaded: {refused.message}") from None


def _data_to(session: Session, version: str) -> datetime:
    return registry.get_version(session, version).data_to


def _check_unseen(version: str, data_to: datetime, holdout: Holdout, settings: Settings) -> None:
    """Refuse a holdout the champion was trained on: it would be judged on what it saw."""
    if data_to > holdout.start:
        possible = data_to + timedelta(days=settings.learning_holdout_days)
        raise SkippedRunError(
            f"champion {version} was trained on the events up to {data_to.date()}; a fair "
            f"{settings.learning_holdout_days}-day holdout needs that many days of newer events, "
            f"so the next run can judge from {possible.date()} on"
        )


def _given(
    session: Session,
    settings: Settings,
    version: str,
    champion: str,
    device: str,
    holdout: Holdout,
) -> tuple[str, ClvModel]:
    try:
        found, model = load_version(session, settings.model_dir, version, device)
    except (NotFoundError, ArtifactRefusedError) as error:
        raise SkippedRunError(f"challenger {version} cannot be judged: {error.message}") from None
    _check_given(found, _data_to(session, found), champion, holdout)
    return found, model


def _check_given(version: str, data_to: datetime, champion: str, holdout: Holdout) -> None:
    """Refuse to judge the champion against itself, or a challenger trained on the holdout."""
    if version == champion:
        raise SkippedRunError(f"{version} is the champion: there is nothing to judge it against")
    if data_to > holdout.start:
        raise SkippedRunError(
            f"challenger {version} was trained on the events up to {data_to.date()}, inside the "
            f"holdout that starts {holdout.start.date()}: it cannot be judged on it"
        )


def _mode_for(champion: ClvModel, config: TrainConfig, mode: str) -> tuple[str, list[str]]:
    """A warm start keeps the champion's feature pipeline, so it cannot add or drop profile
    attributes: when the challenger must leave out other attributes than the champion did (a
    champion trained with the protected ones, now left out by default), it is trained from
    scratch instead, and the decision says why."""
    seen = sorted(set(champion.report.excluded_attributes))
    wanted = sorted(set(config.excluded_attributes))
    if mode != LearningMode.warm or seen == wanted:
        return mode, []
    note = (
        f"trained from scratch, not warm: the champion's features left out "
        f"{', '.join(seen) or 'no attribute'}, the challenger's leave out "
        f"{', '.join(wanted) or 'none'} (CLV_TRAIN_WITH_PROTECTED_ATTRIBUTES)"
    )
    return LearningMode.retrain.value, [note]


def _train_challenger(
    champion: ClvModel,
    log: EventLog,
    profiles: Profiles,
    sources: Sources,
    holdout: Holdout,
    config: TrainConfig,
    mode: str,
    report: Progress,
    cancelled: Callable[[], bool] | None,
) -> ClvModel:
    """``config`` (the champion's, see ``_config_of``); warm starts from the champion's
    weights, retrain from scratch."""
    return train_or_refuse(
        log,
        profiles,
        sources,
        holdout.start,
        config,
        refusal=f"cannot train a challenger at {holdout.start.date()}",
        refused=SkippedRunError,
        progress=report,
        cancelled=cancelled,
        start_from=champion if mode == LearningMode.warm else None,
    )


def _config_of(champion: ClvModel, settings: Settings) -> TrainConfig:
    """The champion's own training configuration, with the learning job's epoch budget and
    the protected attributes left out unless CLV_TRAIN_WITH_PROTECTED_ATTRIBUTES (the loop has
    no request to ask otherwise)."""
    return replace(
        champion.report.config,
        horizon_days=champion.horizon_days,
        architecture=champion.architecture,
        epochs=settings.learning_epochs,
        device=device_for(settings.device),
        excluded_attributes=_excluded(champion, settings),
    )


def _excluded(champion: ClvModel, settings: Settings) -> tuple[str, ...]:
    """The champion's exclusions other than the protected attributes (kept), and the protected
    ones as the setting says."""
    protected_names = set(settings.fairness_attributes)
    kept = [a for a in champion.report.excluded_attributes if a not in protected_names]
    return tuple(sorted({*kept, *protected.excluded_attributes(settings)}))


def decisions(session: Session, limit: int = 50) -> list[LearningDecisionRead]:
    return [
        LearningDecisionRead.model_validate(row)
        for row in learning_repository.latest(session, limit)
    ]


def decision(session: Session, decision_id: int) -> LearningDecisionRead:
    row = learning_repository.get(session, decision_id)
    if row is None:
        raise NotFoundError(f"no learning decision {decision_id}")
    return LearningDecisionRead.model_validate(row)
