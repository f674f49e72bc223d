"""What an operator does with dead letters: look, retry (queue them for the worker again, after
the cause is fixed), or drop (delete the events: they will never count)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from service.dead_letters.schemas import DeadLetterOutcome, DeadLetterPage, DeadLetterRead
from service.events import queue


def page(session: Session, limit: int, after: int = 0) -> DeadLetterPage:
    rows = queue.dead_letters(session, limit + 1, after)
    shown = [
        DeadLetterRead(
            seq=letter.seq,
            event_id=event.event_id,
            customer_id=event.customer_id,
            type=event.type,
            occurred_at=event.occurred_at,
            error=letter.error,
            failed_at=letter.failed_at,
        )
        for letter, event in rows[:limit]
    ]
    return DeadLetterPage(
        dead_letters=shown,
        total=queue.dead_letter_count(session),
        next_after=shown[-1].seq if len(rows) > limit else None,
    )


def retry(session: Session, seqs: list[int] | None) -> DeadLetterOutcome:
    """Queue them again (``seqs``, or all for None); one that still fails comes back."""
    return DeadLetterOutcome(seqs=queue.requeue_dead_letters(session, seqs))


def drop(session: Session, seqs: list[int] | None) -> DeadLetterOutcome:
    return DeadLetterOutcome(seqs=queue.drop_dead_letters(session, seqs))
