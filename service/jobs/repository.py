"""SQL for the jobs queue."""

from __future__ import annotations

import zlib
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from service.db.bulk import is_postgresql
from service.jobs.models import Job

ABANDONED = "the worker running it stopped (no heartbeat); submit the job again"


def job_counts(session: Session) -> dict[tuple[str, str], int]:
    """How many jobs there are of each (kind, status)."""
    rows = session.execute(
        select(Job.kind, Job.status, func.count()).group_by(Job.kind, Job.status)
    )
    return {(kind, status): int(count) for kind, status, count in rows.all()}


def add_job(session: Session, job: Job) -> Job:
    session.add(job)
    session.flush()
    return job


def get_job(session: Session, job_id: int, *, lock: bool = False) -> Job | None:
    query = select(Job).where(Job.id == job_id)
    if lock:
        query = query.with_for_update()
    return session.scalars(query).one_or_none()


def claim_job(session: Session, now: datetime) -> Job | None:
    """The oldest queued job, marked running; other workers skip it (``SKIP LOCKED``)."""
    job = session.scalars(
        select(Job)
        .where(Job.status == "queued")
        .order_by(Job.id)
        .limit(1)
        .with_for_update(skip_locked=True)
    ).one_or_none()
    if job is not None:
        job.status, job.started_at, job.heartbeat_at = "running", now, now
        job.stage = "starting"
    return job


def fail_abandoned_jobs(
    session: Session, heartbeat_before: datetime, now: datetime
) -> list[tuple[int, str]]:
    """Running jobs whose worker stopped beating: they will never finish; say so. Returns the
    (id, kind) of each."""
    result = session.execute(
        update(Job)
        .where(Job.status == "running", Job.heartbeat_at < heartbeat_before)
        .values(status="failed", error=ABANDONED, finished_at=now)
        .returning(Job.id, Job.kind)
    )
    return [(int(job_id), str(kind)) for job_id, kind in result]


def active_job(session: Session, kind: str) -> Job | None:
    """A queued or running job of ``kind``, if any (the oldest)."""
    query = (
        select(Job)
        .where(Job.kind == kind, Job.status.in_(("queued", "running")))
        .order_by(Job.id)
        .limit(1)
    )
    return session.scalars(query).first()


def lock_kind(session: Session, kind: str) -> None:
    """Hold a lock on ``kind`` to the end of the transaction: a PostgreSQL transaction-scoped
    advisory lock; nothing on SQLite, which serialises its writers itself."""
    if is_postgresql(session):
        session.execute(select(func.pg_advisory_xact_lock(zlib.crc32(f"job:{kind}".encode()))))
