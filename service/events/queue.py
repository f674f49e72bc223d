"""SQL for the events' queue: the stored events not applied yet (``pending_events``) and those
set aside as dead letters. Ingestion queues, the worker claims, operators retry or drop."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import Select, Table, delete, func, insert, select
from sqlalchemy.orm import Session

from service.db.queries import count_rows, one_of
from service.events.models import DeadLetter, Event, EventId, PendingEvent

_PENDING: Table = PendingEvent.__table__  # type: ignore[assignment]
_DEAD: Table = DeadLetter.__table__  # type: ignore[assignment]


class Claimed(NamedTuple):
    """Events taken off the queue: their numbers, oldest first, and the span of their times,
    which bounds the event partitions reading them searches (None, None: none taken)."""

    seqs: list[int]
    first: datetime | None
    last: datetime | None


def _taken(session: Session, chosen: Select[tuple[int]]) -> Claimed:
    rows = session.execute(
        delete(_PENDING)
        .where(_PENDING.c.seq.in_(chosen.scalar_subquery()))
        .returning(_PENDING.c.seq, _PENDING.c.occurred_at)
    ).all()
    times = [moment for _, moment in rows]
    return Claimed(
        sorted(seq for seq, _ in rows), min(times, default=None), max(times, default=None)
    )


def claim_events(session: Session, limit: int) -> Claimed:
    """Take up to ``limit`` pending events off the queue, oldest first. Rows other workers hold
    are skipped (PostgreSQL ``SKIP LOCKED``; SQLite has one writer anyway). The claim is undone
    if the caller's transaction rolls back."""
    oldest = (
        select(_PENDING.c.seq)
        .order_by(_PENDING.c.seq)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return _taken(session, oldest)


def claim_listed(session: Session, seqs: Sequence[int]) -> Claimed:
    """Take these events off the queue (those still queued and not held by another worker):
    a worker isolating a failed batch claims its halves again. The numbers travel as one array
    on PostgreSQL (a list of placeholders would stop at 65,535)."""
    held = (
        select(_PENDING.c.seq)
        .where(one_of(session, _PENDING.c.seq, seqs))
        .with_for_update(skip_locked=True)
    )
    return _taken(session, held)


def set_aside(session: Session, seq: int, error: str, now: datetime) -> bool:
    """Move a queued event that cannot be applied to the dead letters, with the error; False
    when it is no longer queued (another worker took it, or its customer was erased)."""
    taken = session.scalar(delete(_PENDING).where(_PENDING.c.seq == seq).returning(_PENDING.c.seq))
    if taken is None:
        return False
    session.execute(insert(_DEAD).values(seq=seq, error=error, failed_at=now))
    return True


def dead_letters(session: Session, limit: int, after: int = 0) -> list[tuple[DeadLetter, Event]]:
    """Dead letters with their events, by sequence number after ``after``."""
    rows = session.execute(
        select(DeadLetter, Event)
        .join(Event, Event.seq == DeadLetter.seq)
        .where(DeadLetter.seq > after)
        .order_by(DeadLetter.seq)
        .limit(limit)
    )
    return [(letter, event) for letter, event in rows]


def dead_letter_count(session: Session) -> int:
    return count_rows(session, select(_DEAD.c.seq))


def requeue_dead_letters(session: Session, seqs: Sequence[int] | None) -> list[int]:
    """Queue dead letters (these, or all) for the worker again; returns their numbers."""
    chosen = _chosen_dead_letters(seqs)
    events = select(Event.seq, Event.occurred_at).where(Event.seq.in_(chosen))
    session.execute(insert(_PENDING).from_select(["seq", "occurred_at"], events))
    return _delete_dead_letters(session, chosen)


def drop_dead_letters(session: Session, seqs: Sequence[int] | None) -> list[int]:
    """Delete dead letters (these, or all) and their events: they will never count."""
    chosen = _chosen_dead_letters(seqs)
    dropped = select(Event.event_id).where(Event.seq.in_(chosen))
    session.execute(delete(EventId).where(EventId.event_id.in_(dropped)))  # may be sent again
    session.execute(delete(Event).where(Event.seq.in_(chosen)))
    return _delete_dead_letters(session, chosen)


def _chosen_dead_letters(seqs: Sequence[int] | None) -> Select[tuple[int]]:
    """The chosen dead letters' numbers as a subquery: "all" may be more than a statement's
    placeholders allow."""
    chosen = select(_DEAD.c.seq)
    return chosen if seqs is None else chosen.where(_DEAD.c.seq.in_(seqs))


def _delete_dead_letters(session: Session, chosen: Select[tuple[int]]) -> list[int]:
    deleted = delete(_DEAD).where(_DEAD.c.seq.in_(chosen)).returning(_DEAD.c.seq)
    return sorted(session.scalars(deleted))


def pending_count(session: Session, up_to: int | None = None) -> int:
    """Events queued (counting stops at ``up_to``: enough to compare with a limit)."""
    return count_rows(session, select(_PENDING.c.seq), up_to)


def oldest_pending(session: Session) -> datetime | None:
    """When the event queued longest was received (sequence numbers follow arrival): how far
    behind the workers are, wherever they run."""
    first = select(func.min(_PENDING.c.seq)).scalar_subquery()
    received: datetime | None = session.scalar(select(Event.received_at).where(Event.seq == first))
    return received


def clear_events(session: Session) -> None:
    session.execute(delete(_PENDING))
