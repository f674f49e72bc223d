"""The learning loop's decisions and the scheduler's bookmarks, stored and read."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TypeVar

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from service.learning.models import LearningDecision, SchedulerMark

Row = TypeVar("Row", LearningDecision, SchedulerMark)


def add(session: Session, row: Row) -> Row:
    """A new decision or bookmark, flushed so its generated columns are set."""
    session.add(row)
    session.flush()
    return row


def latest(session: Session, limit: int) -> Sequence[LearningDecision]:
    query = select(LearningDecision).order_by(LearningDecision.id.desc()).limit(limit)
    return session.scalars(query).all()


def get(session: Session, decision_id: int) -> LearningDecision | None:
    return session.get(LearningDecision, decision_id)


def last_judged_at(session: Session) -> datetime | None:
    """When the last run that judged a challenger (promoted or kept it) decided."""
    return session.scalar(
        select(func.max(LearningDecision.decided_at)).where(
            LearningDecision.outcome.in_(("promoted", "kept"))
        )
    )


def mark_for_update(session: Session, task: str) -> SchedulerMark | None:
    """A scheduled task's bookmark, locked to the end of the transaction."""
    return session.get(SchedulerMark, task, with_for_update=True)
