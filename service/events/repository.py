"""SQL for events. Inserts are idempotent through the database's unique index on event_id."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Insert, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from service.events.models import Event

_EVENTS: Table = Event.__table__  # type: ignore[assignment]


def _insert_ignoring_conflicts(dialect_name: str) -> Insert:
    insert = postgresql.insert if dialect_name == "postgresql" else sqlite.insert
    return insert(_EVENTS).on_conflict_do_nothing(index_elements=[_EVENTS.c.event_id])


def insert_new(session: Session, rows: Sequence[dict[str, Any]]) -> set[str]:
    """Insert the rows whose event_id is not stored yet; return the ids this call stored.

    ``ON CONFLICT DO NOTHING`` makes the unique index the arbiter, so two requests racing with the
    same event_id store it once, and the loser learns it was a duplicate from RETURNING.
    """
    if not rows:
        return set()
    statement = _insert_ignoring_conflicts(session.get_bind().dialect.name).returning(
        _EVENTS.c.event_id
    )
    return set(session.scalars(statement, rows))
