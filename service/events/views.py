"""``POST /v1/events``."""

from __future__ import annotations

from typing import Any

from service.api.deps import (
    BackpressureDep,
    IngestKey,
    IngestRulesDep,
    SessionDep,
    SettingsDep,
)
from service.api.responses import error_responses
from service.api.routing import domain_router
from service.events import service
from service.events.schemas import EventBatchCreate, EventBatchResult

router = domain_router(prefix="/v1/events", tags=["events"])

_RESPONSES: dict[int | str, dict[str, Any]] = error_responses(401, 403, 413, 422)


@router.post(
    "",
    operation_id="ingest_events",
    summary="Send a batch of events",
    responses=_RESPONSES,
)
def ingest_events(
    batch: EventBatchCreate,
    session: SessionDep,
    rules: IngestRulesDep,
    settings: SettingsDep,
    backpressure: BackpressureDep,
    _key: IngestKey,
) -> EventBatchResult:
    """Store the batch's valid events, even when others in it are rejected.

    Each event is stored at most once, by `event_id`: resending is safe and counts as a
    duplicate. The answer comes after the events are committed. 503 with `Retry-After` when the
    service is too far behind to take more (backpressure: `CLV_MAX_PENDING_EVENTS`,
    `CLV_MAX_STALE_SCORES`); nothing of that request was stored.
    """
    backpressure.admit(session)
    return service.ingest(session, batch.candidates(), rules, max_events=settings.max_batch_events)
