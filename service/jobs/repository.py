"""SQL for the work queues."""

from __future__ import annotations

from sqlalchemy import Table, delete, func, select
from sqlalchemy.orm import Session

from service.jobs.models import PendingEvent

_PENDING: Table = PendingEvent.__table__  # type: ignore[assignment]


def claim_events(session: Session, limit: int) -> list[int]:
    """Take up to ``limit`` pending events off the queue, oldest first. Rows other workers hold
    are skipped (PostgreSQL ``SKIP LOCKED``; SQLite has one writer anyway). The claim is undone
    if the caller's transaction rolls back."""
    oldest = (
        select(_PENDING.c.seq)
        .order_by(_PENDING.c.seq)
        .limit(limit)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    claimed = session.scalars(
        delete(_PENDING).where(_PENDING.c.seq.in_(oldest)).returning(_PENDING.c.seq)
    )
    return sorted(claimed)


def pending_count(session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(_PENDING)) or 0)


def clear_events(session: Session) -> None:
    session.execute(delete(_PENDING))
