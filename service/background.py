"""The work beside the API, wired to the domains it serves: the job runner with the scorer its
rescoring shares, the learning scheduler, the webhook deliveries and the audience thresholds
it ticks, and the notification of a failed job. ``service.jobs`` knows no domain; this is
the one place that hands them to it, for the API's lifespan, ``clv worker`` and ``clv demo``."""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

from service.audiences.service import ThresholdWatch
from service.config import Settings
from service.jobs.runner import JobRunner
from service.learning.scheduler import Scheduler
from service.scoring.service import Scorer
from service.webhooks import service as webhooks


def job_runner(
    session_factory: sessionmaker[Session],
    settings: Settings,
    *,
    scorer: Scorer | None = None,
    poll_seconds: float = 1.0,
) -> JobRunner:
    """A runner for every kind of job; ``scorer``: the process's own (default: a new one)."""

    def job_failed(session: Session, job_id: int, kind: str, error: str) -> None:
        data = {"job_id": job_id, "kind": kind, "error": error}
        webhooks.notify(session, settings, "job.failed", data)

    return JobRunner(
        session_factory,
        settings,
        resources=[scorer or Scorer(settings)],
        tickers=[
            Scheduler(session_factory, settings).maybe_tick,
            lambda: webhooks.deliver_due(session_factory, settings),
            ThresholdWatch(session_factory, settings).maybe_tick,
        ],
        on_failed=job_failed,
        poll_seconds=poll_seconds,
    )
