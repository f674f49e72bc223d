"""Runs queued jobs (training; rescoring everyone after a new champion) in a worker, one at a
time, reporting progress as it goes.

Progress and a heartbeat are written in short transactions of their own (at most once a second)
so the API can show them while the job's work is uncommitted; the same write reads whether a
cancel was asked for, which the training checks between epochs. A running job whose heartbeat
stopped for longer than ``abandoned_after`` is marked failed by the next runner that starts.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from service.config import Settings
from service.errors import ServiceError
from service.jobs import repository
from service.ml.training import TrainingCancelledError
from service.scoring.service import RescoreCancelledError, Scorer, rescore_all
from service.training.runner import train_version

logger = logging.getLogger(__name__)


class _Reporter:
    def __init__(self, session_factory: sessionmaker[Session], job_id: int) -> None:
        self.session_factory, self.job_id = session_factory, job_id
        self.cancel_requested, self._last = False, 0.0

    def _write(self, stage: str | None = None, done: float | None = None) -> None:
        """Heartbeat (and progress, when given) at most once a second; reads the cancel flag."""
        if time.monotonic() - self._last < 1.0 and done != 1.0:
            return
        self._last = time.monotonic()
        with self.session_factory() as session, session.begin():
            job = repository.get_job(session, self.job_id)
            if job is None:
                return
            if stage is not None and done is not None:
                job.progress, job.stage = round(done, 4), stage[:256]
            job.heartbeat_at = datetime.now(UTC)
            self.cancel_requested = job.cancel_requested

    def progress(self, stage: str, done: float) -> None:
        self._write(stage, done)

    def cancelled(self) -> bool:
        self._write()
        return self.cancel_requested


class JobRunner:
    def __init__(
        self,
        session_factory: sessionmaker[Session],
        settings: Settings,
        *,
        scorer: Scorer | None = None,
        poll_seconds: float = 1.0,
        abandoned_after: timedelta = timedelta(minutes=10),
    ) -> None:
        self.session_factory, self.settings = session_factory, settings
        self.scorer = scorer or Scorer(settings)
        self.poll_seconds, self.abandoned_after = poll_seconds, abandoned_after
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self) -> bool:
        """Claim and run one queued job; False when there was none."""
        with self.session_factory() as session, session.begin():
            job = repository.claim_job(session, datetime.now(UTC))
            if job is None:
                return False
            job_id, kind, params = job.id, job.kind, dict(job.params)
            actor = job.created_by
        reporter = _Reporter(self.session_factory, job_id)
        status, result, error = "succeeded", None, None
        try:
            result = self._execute(kind, params, actor, reporter)
        except (TrainingCancelledError, RescoreCancelledError):
            status = "cancelled"
        except ServiceError as failure:
            status, error = "failed", failure.message
        except Exception as failure:
            logger.exception("job %s failed", job_id)
            status, error = "failed", f"{type(failure).__name__}: {failure}"
        with self.session_factory() as session, session.begin():
            finished = repository.get_job(session, job_id)
            if finished is not None:
                finished.status, finished.result, finished.error = status, result, error
                finished.stage, finished.finished_at = status, datetime.now(UTC)
                if status == "succeeded":
                    finished.progress = 1.0
        return True

    def _execute(
        self, kind: str, params: dict[str, Any], actor: str, reporter: _Reporter
    ) -> dict[str, Any]:
        if kind == "rescore":
            return rescore_all(
                self.session_factory,
                self.scorer,
                params["version"],
                reporter.progress,
                reporter.cancelled,
            )
        if kind != "train":
            raise ServiceError(f"unknown job kind {kind!r}")
        as_of = datetime.fromisoformat(params["as_of"])
        version = train_version(
            self.session_factory,
            self.settings,
            as_of=as_of,
            horizon_days=params["horizon_days"],
            architecture=params["architecture"],
            epochs=params["epochs"],
            actor=actor,
            progress=reporter.progress,
            cancelled=reporter.cancelled,
        )
        return {"version": version.version, "aliases": version.aliases}

    def run(self) -> None:
        now = datetime.now(UTC)
        with self.session_factory() as session, session.begin():
            repository.fail_abandoned_jobs(session, now - self.abandoned_after, now)
        while not self._stop.is_set():
            try:
                ran = self.run_once()
            except Exception:
                logger.exception("job runner failed; retrying")
                ran = False
            if not ran:
                self._stop.wait(self.poll_seconds)

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name="clv-jobs", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
