"""``/v1/webhooks/deliveries``: the notifications sent to ``CLV_WEBHOOK_URL`` and how each went."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query

from service.api.deps import AdminKey, SessionDep
from service.api.responses import error_responses
from service.api.routing import domain_router
from service.webhooks import service
from service.webhooks.schemas import DeliveryPage, DeliveryStatus

router = domain_router(prefix="/v1/webhooks", tags=["operations"])


@router.get(
    "/deliveries",
    operation_id="list_webhook_deliveries",
    summary="The webhook delivery log",
    responses=error_responses(401, 403, 422),
)
def list_deliveries(
    session: SessionDep,
    _key: AdminKey,
    limit: Annotated[int, Query(ge=1, le=1000, description="Deliveries to return.")] = 100,
    status: Annotated[DeliveryStatus | None, Query(description="Only these.")] = None,
) -> DeliveryPage:
    """Every notification queued for `CLV_WEBHOOK_URL` (drift found, the champion's matured
    accuracy dropping, learning decisions, failed jobs), newest first, with its attempts, the
    endpoint's last answer and what was sent."""
    return service.page(session, limit, status)
