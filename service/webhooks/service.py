"""Webhooks: what the service tells an operator's endpoint, and how.

``notify`` queues a notification in the caller's transaction, so it is sent if and only if what
raised it (a drift report, a learning decision, a failed job) is stored. Workers deliver the due
ones (``deliver_due``, ticked by every job runner): one POST each, JSON, signed, retried with
exponential backoff until a 2xx answer or ``CLV_WEBHOOK_MAX_ATTEMPTS``; each attempt's outcome is
in the delivery log (``GET /v1/webhooks/deliveries``). Delivery is at least once: a worker that
dies mid-send leaves its lease to expire and another sends again, with the same
``X-CLV-Delivery`` id for the receiver to drop the repeat.

Signature: ``X-CLV-Signature: sha256=<hex HMAC-SHA256 of "<X-CLV-Timestamp>.<body>">`` with
``CLV_WEBHOOK_SECRET``; a receiver recomputes it over the raw body and refuses old timestamps.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from service.config import Settings
from service.webhooks import repository
from service.webhooks.repository import DELIVERED, FAILED, PENDING
from service.webhooks.schemas import DeliveryPage, DeliveryRead

logger = logging.getLogger(__name__)

TIMEOUT_SECONDS = 10.0
"""How long one attempt waits for the endpoint's answer."""
LEASE = timedelta(minutes=2)
"""How long a worker holds a delivery it is sending (past the timeout); then another may."""
MAX_BACKOFF = timedelta(hours=1)
BATCH = 20
"""Deliveries a worker sends per tick, so a slow endpoint delays its other work little."""

Send = Callable[[str, bytes, dict[str, str]], int]
"""POST (url, body, headers) and return the HTTP status; raises OSError when nothing answered."""


def notify(session: Session, settings: Settings, event: str, data: dict[str, Any]) -> None:
    """Queue ``event`` with ``data`` for the webhook, in the caller's transaction; nothing
    without ``CLV_WEBHOOK_URL``."""
    if settings.webhook_url is None:
        return
    now = datetime.now(UTC)
    delivery = repository.add(session, event, {}, now)
    delivery.body = {
        "id": delivery.id,
        "event": event,
        "occurred_at": now.isoformat(),
        "data": data,
    }


def signature(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return f"sha256={digest.hexdigest()}"


def deliver_due(
    session_factory: sessionmaker[Session],
    settings: Settings,
    *,
    send: Send | None = None,
    now: datetime | None = None,
) -> int:
    """Send the deliveries due now (at most ``BATCH``); returns how many were attempted."""
    if settings.webhook_url is None or settings.webhook_secret is None:
        return 0
    now = now or datetime.now(UTC)
    with session_factory() as session, session.begin():
        due = [
            (d.id, d.event, d.body, d.attempts)
            for d in repository.lease_due(session, now, now + LEASE, BATCH)
        ]
    secret = settings.webhook_secret.get_secret_value()
    for delivery_id, event, body, attempts in due:
        payload = json.dumps(body, separators=(",", ":"), sort_keys=True).encode()
        timestamp = str(int(now.timestamp()))
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "clv-service",
            "X-CLV-Event": event,
            "X-CLV-Delivery": str(delivery_id),
            "X-CLV-Timestamp": timestamp,
            "X-CLV-Signature": signature(secret, timestamp, payload),
        }
        status_code, error = None, None
        try:
            status_code = (send or _post)(settings.webhook_url, payload, headers)
        except OSError as failure:  # refused, unreachable, timed out
            error = f"{type(failure).__name__}: {failure}"
        _record(session_factory, settings, delivery_id, attempts + 1, status_code, error, now)
    return len(due)


def _record(
    session_factory: sessionmaker[Session],
    settings: Settings,
    delivery_id: int,
    attempts: int,
    status_code: int | None,
    error: str | None,
    now: datetime,
) -> None:
    delivered = status_code is not None and 200 <= status_code < 300
    if status_code is not None and not delivered:
        error = f"the endpoint answered {status_code}"
    gave_up = not delivered and attempts >= settings.webhook_max_attempts
    backoff = timedelta(seconds=settings.webhook_retry_seconds * 2 ** (attempts - 1))
    with session_factory() as session, session.begin():
        repository.record_attempt(
            session,
            delivery_id,
            status=DELIVERED if delivered else FAILED if gave_up else PENDING,
            attempts=attempts,
            next_attempt_at=now + min(backoff, MAX_BACKOFF),
            status_code=status_code,
            error=error,
            delivered_at=now if delivered else None,
        )
    if gave_up:
        logger.error(
            "webhook delivery %s failed %d times; gave up: %s", delivery_id, attempts, error
        )


def _post(url: str, body: bytes, headers: dict[str, str]) -> int:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:
            return int(response.status)
    except urllib.error.HTTPError as answered:  # a non-2xx answer is an answer, not a failure
        return int(answered.code)


def page(session: Session, limit: int, status: str | None) -> DeliveryPage:
    deliveries = repository.recent(session, limit, status)
    return DeliveryPage(
        deliveries=[DeliveryRead.model_validate(d, from_attributes=True) for d in deliveries]
    )
