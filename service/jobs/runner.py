"""Runs queued jobs in a worker, one at a time, reporting progress as it goes; what each kind of
job does is its domain's handler (``service.jobs.registry``), and what else runs between jobs
(the learning scheduler's tick) is given to the runner by whoever builds it
(``service.background``), so the runner knows no domain.

Progress is written in short transactions of its own (at most once a second) so the API can show
it while the job's work is uncommitted; the same write reads whether a cancel was asked for,
which the training checks between epochs. A heartbeat thread stamps the running job every
``CLV_JOB_HEARTBEAT_SECONDS`` whatever the job is doing (a long feature build reports no
progress), so a job whose heartbeat is older than ``CLV_JOB_ABANDONED_AFTER_SECONDS`` belonged
to a worker that died (killed, out of memory, machine lost): every runner sweeps for such jobs
when it starts and then periodically, and marks them failed. A killed training never reaches
registration, so the champion is untouched; the job can simply be submitted again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import CancelledError
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from service.config import Settings
from service.errors import ServiceError
from service.jobs import registry, repository
from service.jobs.kinds import JobKind
from service.jobs.loop import PollingLoop
from service.ops import metrics

logger = logging.getLogger(__name__)

SHUT_DOWN = "the service shut down while it ran; submit the job again"


class JobReporter:
    """A running job's link to its row: progress, heartbeat and the cancel flag."""

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        job_id: int,
        stopping: Callable[[], bool] = lambda: False,
    ) -> None:
        self.session_factory, self.job_id, self.stopping = session_factory, job_id, stopping
        self.cancel_requested, self._last = False, 0.0
        self._lock = threading.Lock()

    def _write(
        self, stage: str | None = None, done: float | None = None, *, force: bool = False
    ) -> None:
        """Heartbeat (and progress, when given) and read the cancel flag: at most once a second
        for the job's own calls; ``force`` (the heartbeat thread) always, without using up the
        job's turn, so progress is never held back by a beat. A job no longer running (a sweep
        took it for dead while the database was away) is left alone and stops as if cancelled:
        it was reported failed, so it must not go on to register a model."""
        with self._lock:
            if not force:
                if time.monotonic() - self._last < 1.0 and done != 1.0:
                    return
                self._last = time.monotonic()
            with self.session_factory() as session, session.begin():
                job = repository.get_job(session, self.job_id)
                if job is None or job.status != "running":
                    self.cancel_requested = True
                    return
                if stage is not None and done is not None:
                    job.progress, job.stage = round(done, 4), stage[:256]
                job.heartbeat_at = datetime.now(UTC)
                self.cancel_requested = job.cancel_requested

    def progress(self, stage: str, done: float) -> None:
        self._write(stage, done)

    def cancelled(self) -> bool:
        """Asked to stop: by a cancel, or because the service is shutting down. The flag is read
        at every check (one primary-key read; checks come once an epoch), while progress and
        the heartbeat are written at most once a second: a cancel that waited for the next
        write could miss a short training altogether."""
        self._write()
        if not self.cancel_requested:
            with self.session_factory() as session:
                job = repository.get_job(session, self.job_id)
                self.cancel_requested = (
                    job is None or job.status != "running" or job.cancel_requested
                )
        return self.cancel_requested or self.stopping()

    @contextmanager
    def heartbeat(self, every: float) -> Iterator[None]:
        """Beat every ``every`` seconds in a thread while the job runs. A failed beat (the
        database briefly away) is logged and retried; the job itself decides its own fate."""
        done = threading.Event()

        def beat() -> None:
            while not done.wait(every):
                try:
                    self._write(force=True)
                except Exception as error:
                    logger.warning("heartbeat of job %s failed: %s", self.job_id, error)

        thread = threading.Thread(target=beat, name=f"clv-job-{self.job_id}-heartbeat", daemon=True)
        thread.start()
        try:
            yield
        finally:
            done.set()
            thread.join(timeout=every + 10)


FailureHook = Callable[[Session, int, str, str], None]
"""(session, job id, kind, error) of a job just marked failed."""


class JobRunner(PollingLoop):
    name = "clv-jobs"

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        settings: Settings,
        *,
        resources: Sequence[object] = (),
        tickers: Sequence[Callable[[], object]] = (),
        on_failed: FailureHook | None = None,
        poll_seconds: float = 1.0,
    ) -> None:
        """``resources``: the process's shared objects handlers may ask for, by type
        (``JobContext.resource``); ``tickers``: called before every turn (each decides itself
        whether anything is due, and queues it as a job); ``on_failed``: called in the
        transaction that marks a job failed (a notification is sent only if that commits)."""
        super().__init__(poll_seconds)
        self.session_factory, self.settings = session_factory, settings
        self.resources = {type(resource): resource for resource in resources}
        self.tickers = tuple(tickers)
        self.on_failed = on_failed
        self.abandoned_after = timedelta(seconds=settings.job_abandoned_after_seconds)
        registry.load_handlers()
        for kind in JobKind:  # every series from 0, so a first failure shows as an increase
            metrics.JOBS_FAILED.labels(kind.value)
        self._next_sweep = 0.0

    def turn(self) -> bool:
        if time.monotonic() >= self._next_sweep:
            self.fail_abandoned()
        for tick in self.tickers:
            tick()
        return self.run_once()

    def fail_abandoned(self) -> int:
        """Mark failed the running jobs whose heartbeat stopped; returns how many."""
        self._next_sweep = time.monotonic() + self.abandoned_after.total_seconds() / 2
        now = datetime.now(UTC)
        with self.session_factory() as session, session.begin():
            failed = repository.fail_abandoned_jobs(session, now - self.abandoned_after, now)
            for job_id, kind in failed:
                self._failed(session, job_id, kind, repository.ABANDONED)
        if failed:
            logger.warning("marked %d abandoned job(s) failed (no heartbeat)", len(failed))
        return len(failed)

    def _failed(self, session: Session, job_id: int, kind: str, error: str) -> None:
        metrics.JOBS_FAILED.labels(kind).inc()
        if self.on_failed is not None:
            self.on_failed(session, job_id, kind, error)

    def run_once(self) -> bool:
        """Claim and run one queued job; False when there was none."""
        with self.session_factory() as session, session.begin():
            job = repository.claim_job(session, datetime.now(UTC))
            if job is None:
                return False
            job_id, kind, params = job.id, job.kind, dict(job.params)
            actor = job.created_by
        reporter = JobReporter(self.session_factory, job_id, lambda: self.stopping)
        status, result, error = "succeeded", None, None
        try:
            with reporter.heartbeat(self.settings.job_heartbeat_seconds):
                result = self._execute(kind, params, actor, reporter)
        except CancelledError:  # registry.JobCancelledError, or a training's own
            status = "cancelled"
            if self.stopping and not reporter.cancel_requested:
                status, error = "failed", SHUT_DOWN
        except ServiceError as failure:
            status, error = "failed", failure.message
        except Exception as failure:
            logger.exception("job %s failed", job_id)
            status, error = "failed", f"{type(failure).__name__}: {failure}"
        with self.session_factory() as session, session.begin():
            finished = repository.get_job(session, job_id)
            if finished is not None and finished.status != "running":
                logger.warning(
                    "job %s ended %s but was marked %s meanwhile; left %s (result %s)",
                    job_id,
                    status,
                    finished.status,
                    finished.status,
                    result,
                )
            elif finished is not None:
                finished.status, finished.result, finished.error = status, result, error
                if status == "failed":
                    self._failed(session, job_id, kind, str(error))
                finished.stage, finished.finished_at = status, datetime.now(UTC)
                if status == "succeeded":
                    finished.progress = 1.0
        return True

    def _execute(
        self, kind: str, params: dict[str, Any], actor: str, reporter: JobReporter
    ) -> dict[str, Any]:
        """Run the kind's handler on the stored params (checked against its model again: a
        row written by hand or by an older version fails with what was wrong)."""
        context = registry.JobContext(
            self.session_factory,
            self.settings,
            actor,
            reporter.job_id,
            reporter.progress,
            reporter.cancelled,
            self.resources,
        )
        return registry.handler_for(kind)(context, params)
