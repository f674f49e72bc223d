"""Keyword-only builders of request bodies: a valid default, overridden field by field."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

BASE_TIME = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def event(
    *,
    event_id: str | None = None,
    customer_id: str = "c-1",
    type: str = "purchase",
    occurred_at: datetime | str = BASE_TIME,
    amount: Any = "10.00",
    **fields: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "event_id": event_id or f"e-{uuid.uuid4().hex[:12]}",
        "customer_id": customer_id,
        "type": type,
        "occurred_at": occurred_at if isinstance(occurred_at, str) else iso(occurred_at),
    }
    if amount is not None:
        body["amount"] = amount
    body.update(fields)
    return body


def purchases(customer_id: str, *days_and_amounts: tuple[int, str]) -> list[dict[str, Any]]:
    """Purchases ``day`` days after BASE_TIME with the given amounts."""
    return [
        event(customer_id=customer_id, occurred_at=BASE_TIME + timedelta(days=day), amount=amount)
        for day, amount in days_and_amounts
    ]


def batch(*events: dict[str, Any]) -> dict[str, Any]:
    return {"events": list(events)}
