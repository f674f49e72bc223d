"""The worker: applies newly stored events to the portrait, in batches, shortly after ingestion.

Ingestion only stores events and queues their sequence numbers; a worker claims a batch of them,
aggregates their events and adds the aggregates, in one transaction. Doing this off the request
path keeps ingestion at the database's pace (bench/ingest.py) and lets the worker fold many
requests into one larger, cheaper update; the portrait follows within a poll interval.

It also keeps stored scores fresh: the customers of each applied batch are marked stale in its
transaction, and the next turn rescores them with the champion (``service.scoring.service``),
then explains a bounded batch of the stored scores still without attributions.

Run it inside the API process (``CLV_WORKER=embedded``, the default: a thread) or on its own
(``clv worker``, with ``CLV_WORKER=off`` for the API).
"""

from __future__ import annotations

import logging
import re
import time
from datetime import UTC, datetime

from psycopg.errors import QueryCanceled
from sqlalchemy.exc import DataError, IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from service.customers import service as customers
from service.customers.models import CustomerAttributes, CustomerProfile
from service.db.bulk import analyze
from service.events import partitions, queue
from service.events.models import Event, EventId
from service.jobs.loop import PollingLoop, backoff_seconds
from service.ml.activity import (
    DAY_COUNTERS,
    MAX_COUNTER,
    PRODUCT_COUNTERS,
    Activity,
    CounterOverflowError,
    aggregate_frames,
)
from service.ops import metrics
from service.portrait import repository as portrait
from service.portrait.models import PORTRAIT_TABLES, CustomerDay, CustomerProduct
from service.scoring import repository as scores
from service.scoring import service as scoring

logger = logging.getLogger(__name__)

_NULL_COLUMN = (
    re.compile(r'column "(?P<column>\w+)" of relation "(?P<table>\w+)"'),  # PostgreSQL
    re.compile(r"NOT NULL constraint failed: (?P<table>\w+)\.(?P<column>\w+)"),  # SQLite
)
"""The column a NOT NULL violation names: what ``service.portrait.repository``'s checked sums
turn an overflow into."""
UPKEEP_SECONDS = 10.0
"""How often an idle worker looks for aged scores (``service.scoring.service.upkeep``)."""
PARTITION_CHECK_SECONDS = 3600.0
"""How often a worker creates the event partitions ahead and applies the retention
(``service.events.partitions``)."""


COUNTERS = {
    CustomerDay.__tablename__: frozenset(DAY_COUNTERS),
    CustomerProduct.__tablename__: frozenset(PRODUCT_COUNTERS),
}
NUMERIC_OUT_OF_RANGE = "22003"  # SQLSTATE: a value past its column's type


def overflow(error: Exception) -> str | None:
    """The counter an error says a sum overflowed (``table.column``, or "a batch's sum"), or
    None for any other error. Only these depend on the events' values alone, so the same events
    fail again on every try: they are isolated and set aside. Anything else (the database
    unavailable, a bug, a schema that drifted) fails the turn and the loop retries, rather than
    setting every event aside."""
    if isinstance(error, CounterOverflowError):
        return "a batch's sum"
    cause = getattr(error, "orig", None)
    if isinstance(error, DataError) and getattr(cause, "sqlstate", None) == NUMERIC_OUT_OF_RANGE:
        return "a stored sum"
    if not isinstance(error, IntegrityError):
        return None
    for pattern in _NULL_COLUMN:
        found = pattern.search(str(cause))
        if found and found["column"] in COUNTERS.get(found["table"], ()):
            return f"{found['table']}.{found['column']}"
    return None


def process_pending(session_factory: sessionmaker[Session], limit: int) -> int:
    """One batch: claim up to ``limit`` queued events, apply them and mark their customers'
    scores stale (in the same transaction); returns how many events were taken off the queue.

    If applying the batch fails because a sum would overflow (``overflow``), the batch is
    bisected in this same turn: each half is claimed and applied again on its own, down to the
    single events that still fail, which become dead letters with the error. So one bad event
    delays the others by a few retries of their batch, never by a turn, and never stops the
    queue."""
    seqs: list[int] = []
    try:
        with session_factory() as session, session.begin():
            claimed = queue.claim_events(session, limit)
            seqs = claimed.seqs
            _apply(session, claimed)
    except (DataError, IntegrityError, CounterOverflowError) as error:
        if not seqs or overflow(error) is None:
            raise
        logger.warning(
            "a batch of %d events failed (%s); isolating the cause",
            len(seqs),
            dead_letter_reason(error),
        )
        _isolate(session_factory, seqs)
    else:
        metrics.EVENTS_APPLIED.inc(len(seqs))
    return len(seqs)


def _apply(session: Session, claimed: queue.Claimed) -> None:
    if not claimed.seqs or claimed.first is None or claimed.last is None:
        return
    frames = portrait.event_frames_by_seq(session, claimed.seqs, claimed.first, claimed.last)
    parts = [aggregate_frames(e, i) for e, i in frames]
    activity = Activity.combine(parts)
    portrait.add_activity(session, activity)
    scores.mark_stale(session, activity.days["customer_id"].unique().tolist(), "events")


def _isolate(session_factory: sessionmaker[Session], seqs: list[int]) -> None:
    """Apply ``seqs`` (claimed again), halving on failure; a single event that fails is set
    aside as a dead letter."""
    try:
        with session_factory() as session, session.begin():
            claimed = queue.claim_listed(session, seqs)
            _apply(session, claimed)
        metrics.EVENTS_APPLIED.inc(len(claimed.seqs))
        return
    except (DataError, IntegrityError, CounterOverflowError) as error:
        if overflow(error) is None:
            raise
        if len(seqs) == 1:
            reason = dead_letter_reason(error)
            with session_factory() as session, session.begin():
                aside = queue.set_aside(session, seqs[0], reason, datetime.now(UTC))
            if aside:
                metrics.DEAD_LETTERS.inc()
                logger.error("event seq %d set aside as a dead letter: %s", seqs[0], reason)
            return
    middle = len(seqs) // 2
    _isolate(session_factory, seqs[:middle])
    _isolate(session_factory, seqs[middle:])


def dead_letter_reason(error: Exception) -> str:
    """What a person reads in the dead letter: which sum would overflow, and the database's own
    message (first line, no statement or parameters)."""
    cause = getattr(error, "orig", None) or error
    message = str(cause).strip().splitlines()[0] if str(cause).strip() else type(cause).__name__
    return (
        f"adding it would take {overflow(error)} of its customer past {MAX_COUNTER:,}, the "
        f"largest a counter holds ({message})"
    )


def drain(session_factory: sessionmaker[Session], limit: int = 20_000) -> int:
    """Apply everything queued (for imports, tests and tools); returns how many events."""
    total = 0
    while done := process_pending(session_factory, limit):
        total += done
    return total


IMPORTED_TABLES = (
    Event.__tablename__,
    EventId.__tablename__,
    *PORTRAIT_TABLES,
    CustomerAttributes.__tablename__,
    CustomerProfile.__tablename__,
)
"""What a bulk import fills: the events, the portrait they are applied to, the profiles."""


def settle_import(session_factory: sessionmaker[Session]) -> int:
    """After a bulk import: apply everything it queued, so the portrait is current when the
    command returns, move the events of months without a partition into partitions of their
    own (``service.events.partitions``: history lands in the default one), and refresh the
    planner's statistics of the tables it filled (``service.db.bulk.analyze``); returns how many
    events were applied."""
    applied = drain(session_factory)
    partitions.maintain(session_factory, datetime.now(UTC), None)
    with session_factory() as session, session.begin():
        analyze(session, IMPORTED_TABLES)
    return applied


class Worker(PollingLoop):
    """The loop: apply events, rescore stale customers, explain a batch of stored scores, while
    there is work; poll when there is none; back off and retry when the database is unavailable."""

    name = "clv-worker"

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        *,
        poll_seconds: float,
        batch: int,
        scorer: scoring.Scorer | None = None,
        profiles: customers.ProfilePolicy | None = None,
        retention_months: int | None = None,
    ) -> None:
        super().__init__(poll_seconds)
        self.session_factory = session_factory
        self.profiles = profiles  # until the merged profiles are caught up (the first turn)
        self.retention_months = retention_months
        self._next_partitions = 0.0
        self.batch = batch
        self._batch = batch  # smaller for a while after a batch timed out
        self.scorer = scorer
        self._next_upkeep = 0.0
        self._refresh_after, self._refresh_failures = 0.0, 0

    def turn(self) -> bool:
        if self.profiles is not None:
            merged = customers.merge_unmerged(self.session_factory, self.profiles)
            if merged:
                logger.info("merged the profiles of %d customers", merged)
            self.profiles = None
        if time.monotonic() >= self._next_partitions:
            self._next_partitions = time.monotonic() + PARTITION_CHECK_SECONDS
            partitions.maintain(self.session_factory, datetime.now(UTC), self.retention_months)
        try:
            applied = process_pending(self.session_factory, self._batch)
        except OperationalError as error:
            # A batch past the worker's statement_timeout would time out on every try: halve it
            # (back to the setting, doubling, once batches apply again).
            if isinstance(error.orig, QueryCanceled) and self._batch > 1:
                self._batch //= 2
                logger.warning("a batch timed out; applying %d events at a time", self._batch)
            raise
        self._batch = min(self.batch, self._batch * 2)
        return bool(applied + self._refresh())

    def _refresh(self) -> int:
        """Rescore queued customers (their scores stored first, then their attributions), then
        explain a small batch of older stored scores (a new champion's), so that the next
        events wait little; with neither to do, the scores' upkeep (aged scores, deciles). A
        failure here (a champion that cannot be loaded) must not hold up the portrait: it is
        logged and rescoring pauses, backing off, while events go on."""
        if self.scorer is None or time.monotonic() < self._refresh_after:
            return 0
        try:
            refreshed = scoring.refresh_stale(self.session_factory, self.scorer)
            refreshed += scoring.explain_pending(self.session_factory, self.scorer)
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
