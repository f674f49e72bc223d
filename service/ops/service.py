"""What the probes and the metrics read from the database: the queues' depths, the jobs'
states, the latest drift check and the model versions' matured accuracy, each through its
domain."""

from __future__ import annotations

from datetime import UTC, datetime

from prometheus_client.core import Metric
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.orm import Session, sessionmaker

from service.drift.service import latest_report as latest_drift
from service.events import queue
from service.jobs import repository as jobs
from service.learning.matured import monitored_figures
from service.ops import metrics
from service.ops.schemas import ReadyRead
from service.scoring import repository as scores


def readiness(session_factory: sessionmaker[Session]) -> ReadyRead:
    """The queues' depths; raises whatever the database raises (the caller answers 503)."""
    with session_factory() as session:
        return ReadyRead(
            status="ok",
            pending_events=queue.pending_count(session),
            stale_scores=scores.queued(session),
            unexplained_scores=scores.unexplained(session),
            dead_letters=queue.dead_letter_count(session),
        )


def database_metrics(session_factory: sessionmaker[Session]) -> list[Metric] | None:
    """The metrics read from the database, or None when it is unreachable (the rest of the
    exposition still answers, with ``clv_database_up 0``)."""
    try:
        with session_factory() as session:
            database = metrics.database_gauges(
                jobs.job_counts(session),
                queue.pending_count(session),
                _seconds_since(queue.oldest_pending(session)),
                scores.queued(session),
                _seconds_since(scores.oldest_queued(session)),
                queue.dead_letter_count(session),
                scores.unexplained(session),
            )
            drift = latest_drift(session)
            if drift is not None:
                database += metrics.drift_gauges(drift.body, drift.created_at)
            database += metrics.accuracy_gauges(monitored_figures(session))
    except (OperationalError, InterfaceError, PoolTimeoutError):  # bounded: service.db.timeouts
        return None
    return database


def _seconds_since(moment: datetime | None) -> float:
    return 0.0 if moment is None else max(0.0, (datetime.now(UTC) - moment).total_seconds())
