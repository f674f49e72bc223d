"""Jobs: queued by the API, run by a worker, observable and cancellable while they run."""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import BaseModel
from sqlalchemy.orm import Session

from service.errors import ConflictError, NotFoundError
from service.jobs import repository
from service.jobs.kinds import JobKind
from service.jobs.models import Job
from service.jobs.schemas import JobRead

FINISHED = frozenset({"succeeded", "failed", "cancelled"})


def submit(
    session: Session, kind: JobKind, params: BaseModel, actor: str, *, whole: bool = False
) -> JobRead:
    """Queue a job of ``kind`` with its handler's parameters (``service.jobs.registry``). The
    fields the caller set are stored, so a job's ``params`` read back as asked and the
    handler's model fills in the rest when it runs; with ``whole``, every field, defaults
    included (a request from a person, stored with what its defaults meant then)."""
    job = Job(
        kind=kind,
        params=params.model_dump(mode="json", exclude_unset=not whole),
        status="queued",
        progress=0.0,
        stage="queued",
        cancel_requested=False,
        created_by=actor,
        created_at=datetime.now(UTC),
    )
    return read(repository.add_job(session, job))


def get(session: Session, job_id: int) -> JobRead:
    return read(_job(session, job_id))


def cancel(session: Session, job_id: int) -> JobRead:
    """A queued job is cancelled at once; a running one at its next checkpoint (an epoch)."""
    job = _job(session, job_id, lock=True)
    if job.status in FINISHED:
        raise ConflictError(f"job {job_id} has already {job.status}")
    if job.status == "queued":
        job.status, job.stage, job.finished_at = "cancelled", "cancelled", datetime.now(UTC)
    job.cancel_requested = True
    return read(job)


def _job(session: Session, job_id: int, lock: bool = False) -> Job:
    job = repository.get_job(session, job_id, lock=lock)
    if job is None:
        raise NotFoundError(f"no job {job_id}")
    return job


def read(job: Job) -> JobRead:
    return JobRead.model_validate(job)


def submit_once(
    session: Session, kind: JobKind, params: BaseModel, actor: str, *, whole: bool = False
) -> JobRead:
    """Queue a job of ``kind`` unless one is already queued or running: that one is returned.
    For work that only needs doing once however often it is asked for (a drift check, a
    learning run), so triggers firing together do not pile up duplicate jobs."""
    active = active_job(session, kind)
    if active is not None:
        return read(active)
    return submit(session, kind, params, actor, whole=whole)


def active_job(session: Session, kind: str) -> Job | None:
    """The queued or running job of ``kind``, read under a lock on ``kind`` held to the end of
    the transaction, so two processes checking at once cannot both go on to queue one. On
    PostgreSQL a transaction-scoped advisory lock; SQLite serialises its writers itself, and
    runs one worker process (see the README)."""
    repository.lock_kind(session, kind)
    return repository.active_job(session, kind)
