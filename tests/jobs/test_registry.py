"""Every kind of job has exactly the handler its domain registered, with the model of its
params; a kind nobody handles, or params its handler does not take, fail the job with a message
that says so (a job row written by a newer version, or by hand)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import Engine

from service.background import job_runner
from service.config import Settings
from service.db.session import make_session_factory
from service.errors import ServiceError
from service.jobs import registry
from service.jobs import service as jobs
from service.jobs.kinds import JobKind
from service.jobs.models import Job
from service.jobs.repository import add_job
from service.learning.schemas import LearnParams, Trigger


def test_every_kind_has_its_domains_handler() -> None:
    registry.load_handlers()

    handlers = {kind: registry.handler_for(kind) for kind in JobKind}

    assert {kind: handler.run.__module__ for kind, handler in handlers.items()} == {
        JobKind.train: "service.training.jobs",
        JobKind.rescore: "service.scoring.jobs",
        JobKind.learn: "service.learning.jobs",
        JobKind.accuracy: "service.learning.jobs",
        JobKind.drift: "service.drift.jobs",
        JobKind.fairness: "service.fairness.jobs",
        JobKind.forecast: "service.forecasts.jobs",
        JobKind.btyd: "service.diagnostics.jobs",
    }
    assert registry.handler_for("rescore") is handlers[JobKind.rescore]  # as stored in a row


def test_a_kind_nobody_handles_is_refused_by_name() -> None:
    registry.load_handlers()

    with pytest.raises(ServiceError, match="unknown job kind 'reindex'"):
        registry.handler_for("reindex")


def test_params_are_stored_as_asked_and_read_back_typed(settings: Settings, db: Engine) -> None:
    """What the caller set is stored (the API shows it as "what was asked"); the handler's
    model fills in the defaults when the job runs."""
    registry.load_handlers()  # not left to whichever test ran before on this worker
    with make_session_factory(db)() as session, session.begin():
        queued = jobs.submit(session, JobKind.learn, LearnParams(trigger=Trigger.drift), "t")

    assert queued.params == {"trigger": "drift"}
    typed = registry.handler_for(JobKind.learn).params.model_validate(queued.params)
    assert typed == LearnParams(trigger=Trigger.drift, as_of=None, mode=None, challenger=None)


def queue_by_hand(db: Engine, kind: str, params: dict[str, Any]) -> int:
    """A queued job row written as a person or an older version might have: ``params`` as
    given, unchecked."""
    with make_session_factory(db)() as session, session.begin():
        row = Job(
            kind=kind,
            params=params,
            status="queued",
            progress=0.0,
            stage="queued",
            cancel_requested=False,
            created_by="by hand",
            created_at=datetime.now(UTC),
        )
        return add_job(session, row).id


def test_a_job_whose_params_its_handler_does_not_take_fails_saying_what_is_wrong(
    settings: Settings, db: Engine
) -> None:
    factory = make_session_factory(db)
    job_id = queue_by_hand(db, "train", {"horizon_days": "a year", "as_of": "2026-01-01T00:00:00Z"})

    runner = job_runner(factory, settings)
    before = REGISTRY.get_sample_value("clv_jobs_failed_total", {"kind": "train"})
    assert runner.run_once()

    with factory() as session:
        failed = jobs.get(session, job_id)
    assert failed.status == "failed"
    assert failed.error is not None
    assert failed.error.startswith("the job's params are not TrainParams")
    assert "horizon_days" in failed.error
    # what the ClvJobFailed alert reads (deploy/prometheus/alerts.yml): the series exists from
    # the runner's start, so the first failure is an increase
    assert before is not None
    assert REGISTRY.get_sample_value("clv_jobs_failed_total", {"kind": "train"}) == before + 1
