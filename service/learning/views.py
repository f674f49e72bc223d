"""``/v1/learning`` and ``/v1/monitoring/accuracy``: run the learning loop, read its decisions,
and the accuracy of matured predictions per model version."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query, status

from service.api.deps import AdminKey, ReadKey, SessionDep, SettingsDep
from service.api.params import DecisionPath
from service.api.responses import error_responses
from service.api.routing import domain_router
from service.jobs import service as jobs
from service.jobs.kinds import JobKind
from service.jobs.registry import NoParams
from service.jobs.schemas import JobRead
from service.learning import matured
from service.learning import service as learning
from service.learning.schemas import AccuracyRead, LearningDecisionRead, LearnRequest

router = domain_router(prefix="/v1", tags=["learning"])


@router.post(
    "/learning/runs",
    operation_id="run_learning",
    summary="Run the learning loop (as a job)",
    status_code=status.HTTP_202_ACCEPTED,
    responses=error_responses(401, 403, 404, 409, 422),
)
def run_learning(
    request: LearnRequest, session: SessionDep, settings: SettingsDep, key: AdminKey
) -> JobRead:
    """Train a challenger on the newest data (warm start from the champion, or from scratch),
    judge both on the time-later holdout, and promote the challenger only when it beats the
    champion's normalised Gini by `CLV_LEARNING_MIN_GINI_GAIN` with calibration no worse. With
    `challenger`, judge that registered version instead. The decision, with both models'
    metrics, appears at `GET /v1/learning/decisions`. 409 while a learning job is queued or
    running, without a champion, or when the champion (or `challenger`) was trained on part of
    the holdout (it would be judged on what it saw: the message says from when it can run). 409
    `holdout_too_thin` when fewer than `CLV_HOLDOUT_MIN_CUSTOMERS` customers are known at the
    holdout's start or fewer than `CLV_HOLDOUT_MIN_BUYERS` of them buy in it (the metrics would
    be undefined): the message names the latest fair `as_of` the data allow, and no decision is
    stored."""
    return learning.submit(session, settings, request, key.name)


@router.get(
    "/learning/decisions",
    operation_id="list_learning_decisions",
    summary="Decisions of the learning loop",
    responses=error_responses(401, 403, 422),
)
def list_decisions(
    session: SessionDep,
    _key: ReadKey,
    limit: Annotated[int, Query(ge=1, le=500, description="How many, newest first.")] = 50,
) -> list[LearningDecisionRead]:
    """Every run, newest first: promoted, kept as challenger or skipped, with the reasons and
    the champion's, the challenger's and the BTYD baseline's metrics on the same holdout."""
    return learning.decisions(session, limit)


@router.get(
    "/learning/decisions/{decision_id}",
    operation_id="get_learning_decision",
    summary="One decision of the learning loop",
    responses=error_responses(401, 403, 404, 422),
)
def get_decision(
    decision_id: DecisionPath, session: SessionDep, _key: ReadKey
) -> LearningDecisionRead:
    return learning.decision(session, decision_id)


@router.get(
    "/monitoring/accuracy",
    operation_id="get_matured_accuracy",
    summary="Accuracy of matured predictions per model version",
    responses=error_responses(401, 403),
)
def get_accuracy(session: SessionDep, _key: ReadKey) -> AccuracyRead:
    """For each model version, its stored scores whose horizon has passed (the first per
    customer) against what the customers actually spent: the backtest's metrics, in production.
    Refreshed every `CLV_MONITOR_INTERVAL_MINUTES` by a worker, or on demand with `POST`."""
    return matured.stored_accuracy(session)


@router.post(
    "/monitoring/accuracy",
    operation_id="refresh_matured_accuracy",
    summary="Recompute the accuracy of matured predictions (as a job)",
    status_code=status.HTTP_202_ACCEPTED,
    responses=error_responses(401, 403),
)
def refresh_accuracy(session: SessionDep, key: AdminKey) -> JobRead:
    return jobs.submit_once(session, JobKind.accuracy, NoParams(), key.name)
