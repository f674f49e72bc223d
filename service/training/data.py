"""Reading what training and scoring need from the database: events into an in-memory log, and
every customer's merged profile."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from service.config import Settings
from service.customers import service as customers
from service.db.queries import Shard
from service.errors import InvalidRequestError
from service.ml.examples import EventLog
from service.portrait import repository as portrait
from service.privacy import PiiHasher


def event_log(
    session: Session,
    until: datetime,
    customer_range: tuple[str, str] | None = None,
    shard: Shard | None = None,
) -> EventLog:
    """Events at or before ``until`` (of customers with ids in [first, last], of a shard's
    customers, when given), streamed in chunks (a server-side cursor on PostgreSQL)."""
    frames = list(
        portrait.event_frames(session, until=until, customer_range=customer_range, shard=shard)
    )
    if not any(len(events) for events, _ in frames):
        raise InvalidRequestError(f"no events at or before {until.isoformat()}")
    return EventLog.from_frames(frames)


def profiles(
    session: Session,
    settings: Settings,
    customer_ids: Sequence[str] | None = None,
    shard: Shard | None = None,
) -> tuple[dict[str, dict[str, Any]], dict[str, set[str]]]:
    policy = customers.ProfilePolicy.from_settings(settings, PiiHasher.from_settings(settings))
    return customers.all_profiles(session, policy, customer_ids, shard)
