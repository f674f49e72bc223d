"""Ingestion: business rules on validated events, then one idempotent bulk insert."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

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
from service.ops import metrics
from service.privacy import PiiHasher

EARLIEST_PLAUSIBLE = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class IngestRules:
    """The settings-dependent rules, which a static schema cannot know."""

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

    def violation(self, event: EventCreate, now: datetime) -> str | None:
        if event.currency is not None and event.currency != self.currency:
            return (
                f"currency: {event.currency} is not the shop currency {self.currency}; "
                "convert the amount before sending (no conversion is done here)"
            )
        if event.occurred_at > now + self.max_future_skew:
            return (
                f"occurred_at: {event.occurred_at.isoformat()} is in the future "
                f"(server time {now.isoformat()}, tolerance {self.max_future_skew})"
            )
        if event.occurred_at < EARLIEST_PLAUSIBLE:
            return f"occurred_at: {event.occurred_at.isoformat()} is before 1970"
        return None

    def row(self, event: EventCreate, received_at: datetime) -> dict[str, Any]:
        has_amount = event.amount is not None
        return {
            "event_id": event.event_id,
            "customer_id": event.customer_id,
            "type": event.type.value,
            "occurred_at": event.occurred_at,
            "amount": event.amount,
            "currency": (event.currency or self.currency) if has_amount else event.currency,
            "items": [item.model_dump(mode="json") for item in event.items]
            if event.items
            else None,
            "source": event.source,
            "properties": self.pii.scrub(event.properties) if event.properties else None,
            "received_at": received_at,
        }


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
    valid: list[EventCreate] = []
    rejections: list[RejectedEvent] = []
    for index, candidate in enumerate(candidates):
        reason: str | None
        if isinstance(candidate, InvalidEvent):
            reason = candidate.reason
        else:
            reason = rules.violation(candidate, now)
            if reason is None:
                valid.append(candidate)
                continue
        rejections.append(RejectedEvent(index=index, event_id=candidate.event_id, reason=reason))

    stored = repository.insert_new(session, [rules.row(event, now) for event in valid])
    accepted = len(stored)  # an id repeated within the batch is stored (and counted) once
    result = EventBatchResult(
        accepted=accepted,
        duplicates=len(valid) - accepted,
        rejected=len(rejections),
        rejections=rejections,
    )
    metrics.record_ingestion(result.accepted, result.duplicates, result.rejected)
    return result
