"""SQL for the delivery log."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from service.webhooks.models import WebhookDelivery

PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"


def add(session: Session, event: str, body: dict[str, Any], now: datetime) -> WebhookDelivery:
    delivery = WebhookDelivery(
        event=event, body=body, status=PENDING, attempts=0, next_attempt_at=now, created_at=now
    )
    session.add(delivery)
    session.flush()
    return delivery


def lease_due(
    session: Session, now: datetime, until: datetime, limit: int
) -> list[WebhookDelivery]:
    """Pending deliveries due by ``now``, oldest first, leased to this worker until ``until``
    (``SKIP LOCKED`` on PostgreSQL: two workers never send one at once)."""
    due = session.scalars(
        select(WebhookDelivery)
        .where(WebhookDelivery.status == PENDING, WebhookDelivery.next_attempt_at <= now)
        .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    for delivery in due:
        delivery.next_attempt_at = until
    return list(due)


def record_attempt(
    session: Session,
    delivery_id: int,
    *,
    status: str,
    attempts: int,
    next_attempt_at: datetime,
    status_code: int | None,
    error: str | None,
    delivered_at: datetime | None,
) -> None:
    session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.id == delivery_id)
        .values(
            status=status,
            attempts=attempts,
            next_attempt_at=next_attempt_at,
            last_status_code=status_code,
            last_error=error,
            delivered_at=delivered_at,
        )
    )


def recent(session: Session, limit: int, status: str | None) -> Sequence[WebhookDelivery]:
    query = select(WebhookDelivery).order_by(WebhookDelivery.id.desc()).limit(limit)
    if status is not None:
        query = query.where(WebhookDelivery.status == status)
    return session.scalars(query).all()
