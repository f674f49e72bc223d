"""Backpressure: ingestion refuses work the worker cannot apply in time.

Storing and applying run at similar rates (bench/ingest.py), and the worker also rescores, so a
storefront sending flat out can build a queue that takes minutes to drain, while the API still
answers 200 and the freshness promise silently becomes "minutes". Past a configured depth of the
event queue (``CLV_MAX_PENDING_EVENTS``) or of the rescoring queue (``CLV_MAX_STALE_SCORES``, off by
default: promoting a champion queues every customer), ``POST /v1/events`` answers 503 with
``Retry-After`` instead, which every HTTP client library retries. The depths are counted at most
once a second per process and only up to one past the limit, so the check costs a request almost
nothing; the limit is therefore approximate by a second's worth of events.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from service.config import Settings
from service.errors import ServiceError
from service.events import queue
from service.scoring import repository as scores


class OverloadedError(ServiceError):
    status_code = 503
    code = "overloaded"


@dataclass
class Backpressure:
    max_pending_events: int  # 0: no limit
    max_stale_scores: int  # 0: no limit
    retry_after_seconds: int
    refresh_seconds: float = 1.0
    _depths: tuple[int, int] = (0, 0)
    _counted_at: float = -float("inf")
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def from_settings(cls, settings: Settings) -> Backpressure:
        return cls(
            settings.max_pending_events,
            settings.max_stale_scores,
            settings.backpressure_retry_after_seconds,
        )

    def admit(self, session: Session) -> None:
        """Raise ``OverloadedError`` when a queue is past its limit."""
        if not (self.max_pending_events or self.max_stale_scores):
            return
        pending, stale = self._depths_now(session)
        if self.max_pending_events and pending > self.max_pending_events:
            self._refuse(
                f"over {self.max_pending_events:,} stored events wait for the worker (the limit, "
                "CLV_MAX_PENDING_EVENTS)"
            )
        if self.max_stale_scores and stale > self.max_stale_scores:
            self._refuse(
                f"over {self.max_stale_scores:,} customers wait for a fresh score (the limit, "
                "CLV_MAX_STALE_SCORES)"
            )

    def _depths_now(self, session: Session) -> tuple[int, int]:
        """The queues' depths, counted at most once per ``refresh_seconds`` and only up to one
        past each limit (a queue without one is not counted). One request counts while the
        others go on with the last figures: none waits on another's count, which on a hung
        database would queue them one after the other."""
        if time.monotonic() - self._counted_at < self.refresh_seconds:
            return self._depths
        if not self._lock.acquire(blocking=False):
            return self._depths
        try:
            self._depths = (
                queue.pending_count(session, up_to=self.max_pending_events + 1)
                if self.max_pending_events
                else 0,
                scores.queued(session, up_to=self.max_stale_scores + 1)
                if self.max_stale_scores
                else 0,
            )
            self._counted_at = time.monotonic()
        finally:
            self._lock.release()
        return self._depths

    def _refuse(self, why: str) -> None:
        raise OverloadedError(
            f"Ingestion is paused while the service catches up: {why}. Nothing in this request "
            f"was stored; send it again after Retry-After ({self.retry_after_seconds} s).",
            headers={"Retry-After": str(self.retry_after_seconds)},
        )
