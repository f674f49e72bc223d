"""Fires the work nobody asks for: the learning job every N new events or on a cron schedule,
and the monitoring jobs (drift, matured accuracy) every ``CLV_MONITOR_INTERVAL_MINUTES``.

Every job runner (embedded in each API process, or ``clv worker``) ticks it. The bookmarks
(``SchedulerMark``: when each task last fired, and the event sequence number then) live in the
database and are locked while a runner decides, so several runners fire each task once, and a
restart neither forgets nor repeats. The jobs themselves are queued only when none of their kind
is queued or running, so a slow job is not stacked up behind itself.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from croniter import croniter
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from service.config import Settings
from service.drift.schemas import DriftCheckRequest
from service.events import repository as events
from service.jobs import service as jobs
from service.jobs.kinds import JobKind
from service.jobs.registry import NoParams
from service.learning import repository as learning_repository
from service.learning.models import SchedulerMark
from service.learning.schemas import Trigger
from service.learning.triggers import request_learning
from service.model_versions import repository as versions

logger = logging.getLogger(__name__)

ACTOR = "scheduler"
NEVER = datetime(1970, 1, 1, tzinfo=UTC)


class Scheduler:
    CHECK_SECONDS = 5.0  # how often a runner looks (a primary-key read and a max())

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        settings: Settings,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.session_factory, self.settings, self.clock = session_factory, settings, clock
        self._next_check = 0.0

    def maybe_tick(self) -> list[str]:
        """``tick`` at most every ``CHECK_SECONDS``."""
        if time.monotonic() < self._next_check:
            return []
        self._next_check = time.monotonic() + self.CHECK_SECONDS
        return self.tick()

    def tick(self) -> list[str]:
        """Queue what is due; returns the kinds of the jobs queued (or found already queued)."""
        now = self.clock()
        try:
            with self.session_factory() as session, session.begin():
                fired = self._fire_due(session, now)
        except IntegrityError:  # another runner created the same bookmark first: next tick
            return []
        for kind in fired:
            logger.info("scheduler queued a %s job", kind)
        return fired

    def _fire_due(self, session: Session, now: datetime) -> list[str]:
        seq = events.latest_seq(session)
        fired: list[str] = []
        every = self.settings.learning_every_events
        if every:
            mark = _mark(session, "learn_events", now, seq)
            if seq - mark.event_seq >= every:
                if request_learning(session, Trigger.events, ACTOR, self.settings):
                    fired.append("learn")
                mark.fired_at, mark.event_seq = now, seq
        if self.settings.learning_schedule:
            mark = _mark(session, "learn_cron", now, seq)
            due = croniter(self.settings.learning_schedule, mark.fired_at).get_next(datetime)
            if due <= now:
                if request_learning(session, Trigger.schedule, ACTOR, self.settings):
                    fired.append("learn")
                mark.fired_at, mark.event_seq = now, seq
        interval = self.settings.monitor_interval_minutes
        if interval:
            mark = _mark(session, "monitor", NEVER, seq)
            if now - mark.fired_at >= timedelta(minutes=interval):
                jobs.submit_once(session, JobKind.accuracy, NoParams(), ACTOR)
                fired.append(JobKind.accuracy)
                if "champion" in versions.aliases(session):  # drift is measured against it
                    jobs.submit_once(session, JobKind.drift, DriftCheckRequest(), ACTOR)
                    fired.append(JobKind.drift)
                mark.fired_at, mark.event_seq = now, seq
        return list(dict.fromkeys(fired))  # each kind once


def _mark(session: Session, task: str, fired_at: datetime, seq: int) -> SchedulerMark:
    """The task's bookmark, locked; created at (``fired_at``, ``seq``) the first time, so "every
    N events" counts from when the setting was first seen, not from the first event ever."""
    mark = learning_repository.mark_for_update(session, task)
    if mark is None:
        mark = learning_repository.add(
            session, SchedulerMark(task=task, fired_at=fired_at, event_seq=seq)
        )
    return mark
