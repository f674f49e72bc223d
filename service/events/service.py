"""Ingestion: business rules on validated events, then one idempotent bulk insert."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from service.config import Settings
from service.errors import PayloadTooLargeError
from service.events import repository
from service.events.schemas import (
    EventBatchResult,
    EventCandidate,
    EventCreate,
    InvalidEvent,
    RejectedEvent,
)
from service.events.types import MONETARY_EVENT_TYPES
from service.ops import metrics
from service.privacy import PiiHasher

EARLIEST_PLAUSIBLE = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class IngestRules:
    """Rules across fields, or that depend on settings and the clock, which a static schema
    cannot express. Built once per process from the settings."""

    currency: str
    max_future_skew: timedelta
    pii: PiiHasher

    @classmethod
    def from_settings(cls, settings: Settings, pii: PiiHasher) -> IngestRules:
        return cls(
            currency=settings.currency,
            max_future_skew=timedelta(seconds=settings.max_future_skew_seconds),
            pii=pii,
        )

    def admit(self, event: EventCreate, now: datetime) -> str | None:
        """Why the event is refused, or None; an admitted event is normalised in place for
        storage (UTC time, the shop currency on amounts, personal values hashed)."""
        if event.amount is None and event.type in MONETARY_EVENT_TYPES:
            return f"amount: required for {event.type.value} events"
        if event.currency is not None and event.currency != self.currency:
            return (
                f"currency: {event.currency} is not the shop currency {self.currency}; "
                "convert the amount before sending (no conversion is done here)"
            )
        try:
            occurred_at = event.occurred_at.astimezone(UTC)
        except OverflowError:
            return f"occurred_at: {event.occurred_at.isoformat()} is out of the supported range"
        if occurred_at > now + self.max_future_skew:
            return (
                f"occurred_at: {occurred_at.isoformat()} is in the future "
                f"(server time {now.isoformat()}, tolerance {self.max_future_skew})"
            )
        if occurred_at < EARLIEST_PLAUSIBLE:
            return f"occurred_at: {occurred_at.isoformat()} is before 1970"
        event.occurred_at = occurred_at
        if event.amount is not None and event.currency is None:
            event.currency = self.currency
        if event.properties:
            event.properties = self.pii.scrub(event.properties)
        return None


def ingest(
    session: Session,
    candidates: Sequence[EventCandidate],
    rules: IngestRules,
    *,
    max_events: int,
    now: datetime | None = None,
) -> EventBatchResult:
    """Store the valid events not stored before; count and explain the rest.

    The caller commits: the HTTP route before it answers, the CSV import once per chunk.
    """
    if len(candidates) > max_events:
        raise PayloadTooLargeError(
            f"A batch holds at most {max_events} events; this one has {len(candidates)}. "
            "Split it into smaller batches."
        )
    now = now or datetime.now(UTC)
    admitted: list[EventCreate] = []
    rejections: list[RejectedEvent] = []
    for index, candidate in enumerate(candidates):
        reason: str | None
        if isinstance(candidate, InvalidEvent):
            reason = candidate.reason
        else:
            reason = rules.admit(candidate, now)
            if reason is None:
                admitted.append(candidate)
                continue
        rejections.append(RejectedEvent(index=index, event_id=candidate.event_id, reason=reason))

    stored = repository.insert_new(session, admitted, received_at=now)  # and queues them
    accepted = len(stored)  # an id repeated within the batch is stored (and counted) once
    result = EventBatchResult(
        accepted=accepted,
        duplicates=len(admitted) - accepted,
        rejected=len(rejections),
        rejections=rejections,
    )
    metrics.record_ingestion(result.accepted, result.duplicates, result.rejected)
    return result
