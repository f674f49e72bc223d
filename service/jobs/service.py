"""Jobs: queued by the API, run by a worker, observable and cancellable while they run."""

from __future__ import annotations

import zlib
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from service.db.bulk import is_postgresql
from service.errors import ConflictError, NotFoundError
from service.jobs import repository
from service.jobs.models import Job
from service.model_versions.schemas import JobRead

FINISHED = frozenset({"succeeded", "failed", "cancelled"})


def submit(session: Session, kind: str, params: dict[str, Any], actor: str) -> JobRead:
    job = Job(
        kind=kind,
        params=params,
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


def submit_once(session: Session, kind: str, params: dict[str, Any], actor: str) -> JobRead:
    """Queue a job of ``kind`` unless one is already queued or running: that one is returned.
    For work that only needs doing once however often it is asked for (a drift check, a
    learning run), so triggers firing together do not pile up duplicate jobs."""
    active = active_job(session, kind)
    return read(active) if active is not None else submit(session, kind, params, actor)


def active_job(session: Session, kind: str) -> Job | None:
    """The queued or running job of ``kind``, read under a lock on ``kind`` held to the end of
    the transaction, so two processes checking at once cannot both go on to queue one. On
    PostgreSQL a transaction-scoped advisory lock; SQLite serialises its writers itself, and
    runs one worker process (see the README)."""
    if is_postgresql(session):
        session.execute(select(func.pg_advisory_xact_lock(zlib.crc32(f"job:{kind}".encode()))))
    return repository.active_job(session, kind)
