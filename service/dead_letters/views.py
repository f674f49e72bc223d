"""``/v1/dead-letters``: events the worker set aside, for an admin to retry or drop."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query

from service.api.deps import AdminKey, SessionDep
from service.api.responses import error_responses
from service.api.routing import domain_router
from service.dead_letters import service
from service.dead_letters.limits import MAX_LISTED
from service.dead_letters.schemas import (
    DeadLetterOutcome,
    DeadLetterPage,
    DeadLetterSelection,
)

router = domain_router(prefix="/v1/dead-letters", tags=["events"])


@router.get(
    "",
    operation_id="list_dead_letters",
    summary="Events set aside",
    responses=error_responses(401, 403, 422),
)
def list_dead_letters(
    session: SessionDep,
    _key: AdminKey,
    limit: Annotated[int, Query(ge=1, le=MAX_LISTED)] = 100,
    after: Annotated[int, Query(ge=0, le=2**63 - 1)] = 0,
) -> DeadLetterPage:
    """Stored events the worker could not apply, with the error, oldest first. They count
    nowhere (portrait, training, scores) until retried; the rest of the queue went on."""
    return service.page(session, limit, after)


@router.post(
    "/retry",
    operation_id="retry_dead_letters",
    summary="Queue dead letters again",
    responses=error_responses(401, 403, 422),
)
def retry_dead_letters(
    selection: DeadLetterSelection, session: SessionDep, _key: AdminKey
) -> DeadLetterOutcome:
    """Put them back on the worker's queue (after fixing the cause); one that fails again is
    set aside again."""
    return service.retry(session, selection.chosen)


@router.post(
    "/drop",
    operation_id="drop_dead_letters",
    summary="Delete dead letters and their events",
    responses=error_responses(401, 403, 422),
)
def drop_dead_letters(
    selection: DeadLetterSelection, session: SessionDep, _key: AdminKey
) -> DeadLetterOutcome:
    """Delete the events: they will never count. Sending the same `event_id` later stores it
    anew."""
    return service.drop(session, selection.chosen)
