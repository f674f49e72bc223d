"""SQL for events. Inserts are idempotent through the database's unique index on event_id.

On PostgreSQL a batch travels as one JSON document, serialised by pydantic-core in Rust and
expanded into rows by ``jsonb_to_recordset`` inside the server. The obvious multi-row VALUES list
has 10,000 placeholders for 1,000 events, and preparing it client-side cost more than the
database's own work (~100 ms a batch; building dicts for ``json.dumps`` still ~20 ms); see
bench/ingest.py. Amounts travel as JSON strings, so they stay exact. SQLite, the embedded demo
store, takes SQLAlchemy's multi-row insert.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pydantic import TypeAdapter
from sqlalchemy import Table, text
from sqlalchemy.dialects import sqlite
from sqlalchemy.orm import Session

from service.events.models import Event
from service.events.schemas import ITEMS_AS_JSON, EventCreate

_EVENTS: Table = Event.__table__  # type: ignore[assignment]
_AS_JSON = TypeAdapter(list[EventCreate])

_PG_COLUMNS = {
    "event_id": "text",
    "customer_id": "text",
    "type": "text",
    "occurred_at": "timestamptz",
    "amount": "numeric",
    "currency": "text",
    "items": "jsonb",
    "source": "text",
    "properties": "jsonb",
}
_PG_INSERT = text(
    f"INSERT INTO events ({', '.join(_PG_COLUMNS)}, received_at) "
    f"SELECT {', '.join(_PG_COLUMNS)}, :received_at "
    "FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS r("
    + ", ".join(f"{column} {kind}" for column, kind in _PG_COLUMNS.items())
    + ") ON CONFLICT (event_id) DO NOTHING RETURNING event_id"
)


def _row(event: EventCreate, received_at: datetime) -> dict[str, Any]:
    row = event.model_dump(exclude={"items"})
    row["type"] = event.type.value
    row["items"] = ITEMS_AS_JSON.dump_python(event.items, mode="json") if event.items else None
    row["received_at"] = received_at
    return row


def insert_new(
    session: Session, events: Sequence[EventCreate], *, received_at: datetime
) -> set[str]:
    """Insert the events whose event_id is not stored yet; return the ids this call stored.

    ``ON CONFLICT DO NOTHING`` makes the unique index the arbiter, so two requests racing with the
    same event_id store it once, and the loser learns it was a duplicate from RETURNING.
    """
    if not events:
        return set()
    if session.get_bind().dialect.name == "postgresql":
        document = _AS_JSON.dump_json(list(events)).decode()
        return set(session.scalars(_PG_INSERT, {"rows": document, "received_at": received_at}))
    statement = (
        sqlite.insert(_EVENTS)
        .on_conflict_do_nothing(index_elements=[_EVENTS.c.event_id])
        .returning(_EVENTS.c.event_id)
    )
    return set(session.scalars(statement, [_row(event, received_at) for event in events]))
