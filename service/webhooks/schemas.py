"""The delivery log as the API shows it."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

DeliveryStatus = Literal["pending", "delivered", "failed"]


class DeliveryRead(BaseModel):
    id: int = Field(description="The delivery's id, sent as X-CLV-Delivery.")
    event: str = Field(
        description="drift.detected, accuracy.dropped, learning.decision, job.failed"
    )
    status: DeliveryStatus = Field(
        description="pending (to be sent or retried), delivered (a 2xx answer), or failed (no "
        "2xx answer in CLV_WEBHOOK_MAX_ATTEMPTS attempts)."
    )
    attempts: int = Field(description="Attempts made so far.")
    next_attempt_at: datetime = Field(description="When a worker tries it next, while pending.")
    last_status_code: int | None = Field(description="The endpoint's last answer, if any.")
    last_error: str | None = Field(description="Why the last attempt failed, if it did.")
    created_at: datetime = Field(description="When it was queued.")
    delivered_at: datetime | None = Field(description="When the endpoint took it.")
    body: dict[str, Any] = Field(description="What is POSTed: id, event, occurred_at, data.")


class DeliveryPage(BaseModel):
    deliveries: list[DeliveryRead] = Field(description="Newest first.")
