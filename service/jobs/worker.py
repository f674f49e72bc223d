"""The worker: applies newly stored events to the portrait, in batches, shortly after ingestion.

Ingestion only stores events and queues their sequence numbers; a worker claims a batch of them,
aggregates their events and adds the aggregates, in one transaction. Doing this off the request
path keeps ingestion at the database's pace (bench/ingest.py) and lets the worker fold many
requests into one larger, cheaper update; the portrait follows within a poll interval.

It also keeps stored scores fresh: the customers of each applied batch are marked stale in its
transaction, and the next turn rescores them with the champion (``service.scoring.service``).

Run it inside the API process (``CLV_WORKER=embedded``, the default: a thread) or on its own
(``clv worker``, with ``CLV_WORKER=off`` for the API).
"""

from __future__ import annotations

import logging
import threading
import time

from sqlalchemy.orm import Session, sessionmaker

from service.jobs import repository
from service.ml.activity import Activity, aggregate_frames
from service.portrait import repository as portrait
from service.scoring import repository as scores
from service.scoring import service as scoring

logger = logging.getLogger(__name__)

UPKEEP_SECONDS = 10.0
"""How often an idle worker looks for aged scores (``service.scoring.service.upkeep``)."""


def process_pending(session_factory: sessionmaker[Session], limit: int) -> int:
    """One batch: claim up to ``limit`` queued events, apply them and mark their customers'
    scores stale (in the same transaction); returns how many events."""
    with session_factory() as session, session.begin():
        seqs = repository.claim_events(session, limit)
        if seqs:
            parts = [aggregate_frames(e, i) for e, i in portrait.event_frames_by_seq(session, seqs)]
            activity = Activity.combine(parts)
            portrait.add_activity(session, activity)
            scores.mark_stale(session, activity.days["customer_id"].unique().tolist(), "events")
    return len(seqs)


def drain(session_factory: sessionmaker[Session], limit: int = 20_000) -> int:
    """Apply everything queued (for imports, tests and tools); returns how many events."""
    total = 0
    while done := process_pending(session_factory, limit):
        total += done
    return total


class Worker:
    """The loop: apply events, then rescore stale customers, while there is work; poll when
    there is none; back off and retry when the database is unavailable."""

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        *,
        poll_seconds: float,
        batch: int,
        scorer: scoring.Scorer | None = None,
    ) -> None:
        self.session_factory = session_factory
        self.poll_seconds = poll_seconds
        self.batch = batch
        self.scorer = scorer
        self._next_upkeep = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            try:
                done = process_pending(self.session_factory, self.batch) + self._refresh()
                failures = 0
            except Exception:
                failures += 1
                logger.exception("worker batch failed; retrying")
                self._stop.wait(min(30.0, self.poll_seconds * 2**failures))
                continue
            if not done:
                self._stop.wait(self.poll_seconds)

    def _refresh(self) -> int:
        """Rescore queued customers, or, with none queued, do the scores' upkeep (aged scores,
        deciles); a failure here (a champion that cannot be loaded) is logged and must not hold
        up the portrait."""
        if self.scorer is None:
            return 0
        try:
            refreshed = scoring.refresh_stale(self.session_factory, self.scorer)
            if refreshed or time.monotonic() < self._next_upkeep:
                return refreshed
            self._next_upkeep = time.monotonic() + UPKEEP_SECONDS
            return scoring.upkeep(self.session_factory, self.scorer)
        except Exception:
            logger.exception("rescoring stale customers failed; they stay queued")
            return 0

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name="clv-worker", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
