"""The portrait: kept current batch by batch, read as of now or as of any past time.

- the worker (``service.events.worker``) keeps it current: it aggregates newly stored events in
  batches and adds them to the stored aggregates;
- ``current``: features as of now, from the stored aggregates (no event is re-read).
- ``as_of``: features at a past time, from the stored aggregates corrected by the events
  after it (``activity_at``); the same aggregation and feature code as ``current`` and as
  training. Scoring reads its inputs the same way (``scoring_inputs``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
from sqlalchemy.orm import Session

from service.db.bulk import analyze
from service.errors import NotFoundError, ServiceError
from service.events import queue
from service.ml import segments
from service.ml.activity import Activity, aggregate_frames, day_number
from service.ml.categories import category_mix
from service.ml.clv_model import ClvModel
from service.ml.examples import RecentEvents
from service.ml.features import BEHAVIOUR_FEATURES, behaviour_features
from service.ml.prefixes import FLOOR_ORDERS, FLOOR_WINDOW_SECONDS, Orders
from service.ml.segments import rfm_segments
from service.portrait import repository
from service.portrait.models import PORTRAIT_TABLES
from service.portrait.schemas import (
    FeatureCatalogueRead,
    FeatureDefinitionRead,
    PortraitRead,
    TopicRead,
    TopicWordRead,
)


def features_of(activity: Activity, as_of: datetime) -> pd.DataFrame:
    """Behaviour and category-mix features with the RFM segment, per customer in ``activity``."""
    as_of_day = day_number(as_of)
    behaviour = behaviour_features(activity.days[activity.days["day"] <= as_of_day], as_of_day)
    mix = category_mix(activity.products, activity.catalogue).reindex(behaviour.index)
    features = pd.concat([behaviour, mix.fillna(0.0)], axis=1)
    return features.assign(segment=rfm_segments(behaviour))


def catalogue(champion: Callable[[], tuple[str, ClvModel]]) -> FeatureCatalogueRead:
    """The behavioural features' definitions, and the serving model's product topics with
    their top words (``champion``: the model answering reads). Without a model to serve, the
    definitions still answer, with no topics: they do not depend on one."""
    version, topics = None, []
    try:
        version, model = champion()
    except ServiceError:
        pass
    else:
        fitted = model.pipeline.topics_
        if fitted is not None:
            topics = [
                TopicRead(
                    feature=definition.name,
                    words=[TopicWordRead(word=w, weight=round(p, 6)) for w, p in words],
                )
                for definition, words in zip(fitted.definitions(), fitted.top_words(), strict=True)
            ]
    return FeatureCatalogueRead(
        features=[FeatureDefinitionRead(**vars(feature)) for feature in BEHAVIOUR_FEATURES],
        segments=segments.__doc__ or "",
        model_version=version,
        topics=topics,
    )


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
    return _read(customer_id, activity_at(session, [customer_id], moment), moment)


def rebuild(session: Session, progress: Callable[[int], None] | None = None) -> int:
    """Recompute every aggregate from the stored events (after an upgrade that added the
    portrait, or to repair it), with fresh planner statistics of what it filled (scoring reads
    the aggregates by customer: ``service.db.bulk.analyze``); returns the events read. Stop
    ingestion while it runs."""
    repository.clear_activity(session)
    queue.clear_events(session)  # every stored event is in the rebuild
    events = 0
    everything = datetime.now(UTC) + timedelta(days=1)
    for event_frame, item_frame in repository.event_frames(session, until=everything):
        repository.add_activity(session, aggregate_frames(event_frame, item_frame))
        events += len(event_frame)
        if progress:
            progress(len(event_frame))
    analyze(session, PORTRAIT_TABLES)
    return events


def import_catalogue(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    repository.add_descriptions(session, rows)


def _aggregated(frames: Iterable[tuple[pd.DataFrame, pd.DataFrame]]) -> Activity:
    return Activity.combine([aggregate_frames(events, items) for events, items in frames])


def activity_at(session: Session, customer_ids: Sequence[str], moment: datetime) -> Activity:
    """The listed customers' aggregates at ``moment``, from the stored ones rather than their
    whole history: stored, less the applied events after the moment, plus the queued events at
    or before it (both few when the moment is recent). The same values as aggregating every
    event at or before the moment, except the product texts, which are the latest known.

    Read in that order, an event that a worker applies during the reads is never counted twice
    nor subtracted without having been added: at worst it is left out, or counted although
    after the moment; and the same commit that applied it marks its customer's stored score
    stale, so a score computed from these aggregates is soon replaced."""
    later = _aggregated(repository.applied_frames_after(session, customer_ids, after=moment))
    stored = repository.load_activity(session, customer_ids)
    queued = _aggregated(repository.queued_frames(session, customer_ids, until=moment))
    current = stored if queued.days.empty else Activity.combine([stored, queued])
    current = current.minus(later)
    return replace(current, days=current.days[current.days["day"] <= day_number(moment)])


def latest_orders(session: Session, customer_ids: Sequence[str], moment: datetime) -> Orders:
    """The listed customers' orders in the floor's window before ``moment``
    (``Orders.latest``), with their items: what a model that ``floors`` its scores takes away
    from them. Read a second wider than the window (times are compared in whole seconds)."""
    since = moment - timedelta(seconds=FLOOR_WINDOW_SECONDS + 1)
    events, items = repository.latest_orders(
        session, customer_ids, since=since, until=moment, count=FLOOR_ORDERS
    )
    return Orders.latest(events, items, int(moment.timestamp()))


def scoring_inputs(
    session: Session, customer_ids: Sequence[str], moment: datetime, sequence_length: int
) -> tuple[Activity, RecentEvents]:
    """What a model scores the listed customers at ``moment`` from: their aggregates
    (``activity_at``) and their latest events (``sequence_length`` and the one before)."""
    activity = activity_at(session, customer_ids, moment)
    events, categories = repository.recent_events(
        session, customer_ids, until=moment, count=sequence_length
    )
    return activity, RecentEvents(events, categories)
