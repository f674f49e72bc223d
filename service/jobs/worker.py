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
import time

from sqlalchemy.orm import Session, sessionmaker

from service.jobs import repository
from service.jobs.loop import PollingLoop, backoff_seconds
from service.ml.activity import Activity, aggregate_frames
from service.ops import metrics
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
    metrics.EVENTS_APPLIED.inc(len(seqs))
    return len(seqs)


def drain(session_factory: sessionmaker[Session], limit: int = 20_000) -> int:
    """Apply everything queued (for imports, tests and tools); returns how many events."""
    total = 0
    while done := process_pending(session_factory, limit):
        total += done
    return total


class Worker(PollingLoop):
    """The loop: apply events, then rescore stale customers, while there is work; poll when
    there is none; back off and retry when the database is unavailable."""

    name = "clv-worker"

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        *,
        poll_seconds: float,
        batch: int,
        scorer: scoring.Scorer | None = None,
    ) -> None:
        super().__init__(poll_seconds)
        self.session_factory = session_factory
        self.batch = batch
        self.scorer = scorer
        self._next_upkeep = 0.0
        self._refresh_after, self._refresh_failures = 0.0, 0

    def turn(self) -> bool:
        return bool(process_pending(self.session_factory, self.batch) + self._refresh())

    def _refresh(self) -> int:
        """Rescore queued customers, or, with none queued, do the scores' upkeep (aged scores,
        deciles). A failure here (a champion that cannot be loaded) must not hold up the
        portrait: it is logged and rescoring pauses, backing off, while events go on."""
        if self.scorer is None or time.monotonic() < self._refresh_after:
            return 0
        try:
            refreshed = scoring.refresh_stale(self.session_factory, self.scorer)
            if not refreshed and time.monotonic() >= self._next_upkeep:
                self._next_upkeep = time.monotonic() + UPKEEP_SECONDS
                refreshed = scoring.upkeep(self.session_factory, self.scorer)
        except Exception:
            self._refresh_failures += 1
            pause = backoff_seconds(1.0, self._refresh_failures)
            self._refresh_after = time.monotonic() + pause
            logger.exception(
                "rescoring stale customers failed; they stay queued (next try in %.0f s)", pause
            )
            return 0
        self._refresh_failures = 0
        return refreshed
