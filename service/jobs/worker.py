"""The worker: applies newly stored events to the portrait, in batches, shortly after ingestion.

Ingestion only stores events and queues their sequence numbers; a worker claims a batch of them,
aggregates their events and adds the aggregates, in one transaction. Doing this off the request
path keeps ingestion at the database's pace (bench/ingest.py) and lets the worker fold many
requests into one larger, cheaper update; the portrait follows within a poll interval.

Run it inside the API process (``CLV_WORKER=embedded``, the default: a thread) or on its own
(``clv worker``, with ``CLV_WORKER=off`` for the API).
"""

from __future__ import annotations

import logging
import threading

from sqlalchemy.orm import Session, sessionmaker

from service.jobs import repository
from service.ml.activity import Activity, aggregate_frames
from service.portrait import repository as portrait

logger = logging.getLogger(__name__)


def process_pending(session_factory: sessionmaker[Session], limit: int) -> int:
    """One batch: claim up to ``limit`` queued events and apply them; returns how many."""
    with session_factory() as session, session.begin():
        seqs = repository.claim_events(session, limit)
        if seqs:
            parts = [aggregate_frames(e, i) for e, i in portrait.event_frames_by_seq(session, seqs)]
            portrait.add_activity(session, Activity.combine(parts))
    return len(seqs)


def drain(session_factory: sessionmaker[Session], limit: int = 20_000) -> int:
    """Apply everything queued (for imports, tests and tools); returns how many events."""
    total = 0
    while done := process_pending(session_factory, limit):
        total += done
    return total


class Worker:
    """The loop: process batches while there is work, poll when there is none, back off and
    retry when the database is unavailable."""

    def __init__(
        self, session_factory: sessionmaker[Session], *, poll_seconds: float, batch: int
    ) -> None:
        self.session_factory = session_factory
        self.poll_seconds = poll_seconds
        self.batch = batch
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            try:
                done = process_pending(self.session_factory, self.batch)
                failures = 0
            except Exception:
                failures += 1
                logger.exception("worker batch failed; retrying")
                self._stop.wait(min(30.0, self.poll_seconds * 2**failures))
                continue
            if not done:
                self._stop.wait(self.poll_seconds)

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name="clv-worker", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
