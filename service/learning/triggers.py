"""What starts the learning job: a request, N new events, a cron schedule, or detected drift."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from service.config import Settings
from service.jobs import service as jobs
from service.jobs.kinds import JobKind
from service.jobs.schemas import JobRead
from service.learning import repository as learning_repository
from service.learning.schemas import LearnParams, Trigger


def request_learning(
    session: Session, trigger: Trigger, actor: str, settings: Settings
) -> JobRead | None:
    """Queue a learning job (unless one is queued or running: that one is returned). Automatic
    triggers wait half a holdout (``CLV_LEARNING_HOLDOUT_DAYS`` / 2) after the last run that
    judged a challenger, so a drift that persists after a challenger was kept, or events that
    keep streaming in, do not retrain every hour and select on nearly the same holdout again
    and again: None then. A request on demand always queues."""
    if trigger is not Trigger.demand:
        wait = timedelta(days=settings.learning_holdout_days / 2)
        last = learning_repository.last_judged_at(session)
        if last is not None and last > datetime.now(UTC) - wait:
            return None
    return jobs.submit_once(session, JobKind.learn, LearnParams(trigger=trigger), actor)
