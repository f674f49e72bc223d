"""The portrait: kept current batch by batch, read as of now or as of any past time.

- the worker (``service.events.worker``) keeps it current: it aggregates newly stored events in
  batches and adds them to the stored aggregates;
- ``current``: features as of now, from the stored aggregates (no event is re-read).
- ``as_of``: features at a past time, from the customer's raw events at or before it; the same
  aggregation and feature code as ``current`` and as training.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
from sqlalchemy.orm import Session

from service.errors import NotFoundError
from service.events import queue
from service.ml.activity import Activity, aggregate_frames, day_number
from service.ml.categories import category_mix
from service.ml.features import behaviour_features
from service.ml.segments import rfm_segments
from service.portrait import repository
from service.portrait.schemas import PortraitRead


def features_of(activity: Activity, as_of: datetime) -> pd.DataFrame:
    """Behaviour and category-mix features with the RFM segment, per customer in ``activity``."""
    as_of_day = day_number(as_of)
    behaviour = behaviour_features(activity.days[activity.days["day"] <= as_of_day], as_of_day)
    mix = category_mix(activity.products, activity.catalogue).reindex(behaviour.index)
    features = pd.concat([behaviour, mix.fillna(0.0)], axis=1)
    return features.assign(segment=rfm_segments(behaviour))


def _read(customer_id: str, activity: Activity, as_of: datetime) -> PortraitRead:
    features = features_of(activity, as_of)
    if customer_id not in features.index:
        raise NotFoundError(f"no events for customer {customer_id!r} at or before {as_of}")
    row = features.loc[customer_id]
    values = {name: float(value) for name, value in row.drop("segment").items()}
    return PortraitRead(
        customer_id=customer_id, as_of=as_of, segment=str(row["segment"]), features=values
    )


def current(
    session: Session,
    customer_id: str,
    now: datetime | None = None,
    activity: Activity | None = None,
) -> PortraitRead:
    """The customer's portrait now, from their stored aggregates (``activity``, when the caller
    has read them already)."""
    if activity is None:
        activity = repository.load_activity(session, [customer_id])
    return _read(customer_id, activity, now or datetime.now(UTC))


def as_of(session: Session, customer_id: str, moment: datetime) -> PortraitRead:
    return _read(customer_id, activity_until(session, moment, customer_ids=[customer_id]), moment)


def rebuild(session: Session, progress: Callable[[int], None] | None = None) -> int:
    """Recompute every aggregate from the stored events (after an upgrade that added the
    portrait, or to repair it); returns the events read. Stop ingestion while it runs."""
    repository.clear_activity(session)
    queue.clear_events(session)  # every stored event is in the rebuild
    events = 0
    everything = datetime.now(UTC) + timedelta(days=1)
    for event_frame, item_frame in repository.event_frames(session, until=everything):
        repository.add_activity(session, aggregate_frames(event_frame, item_frame))
        events += len(event_frame)
        if progress:
            progress(len(event_frame))
    return events


def import_catalogue(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    repository.add_descriptions(session, rows)


def activity_until(
    session: Session,
    until: datetime,
    *,
    customer_ids: Sequence[str] | None = None,
    progress: Callable[[int], None] | None = None,
) -> Activity:
    """Activity at or before ``until`` (one customer's, or everyone's), aggregated from the raw
    events chunk by chunk: memory is bounded by the aggregates, not by the events."""
    parts = []
    for event_frame, item_frame in repository.event_frames(
        session, until=until, customer_ids=customer_ids
    ):
        parts.append(aggregate_frames(event_frame, item_frame))
        if progress:
            progress(len(event_frame))
    return Activity.combine(parts)
