"""What starts the learning job: a request, N new events, a cron schedule, or detected drift."""

from __future__ import annotations

from enum import StrEnum

from sqlalchemy.orm import Session

from service.jobs import service as jobs
from service.model_versions.schemas import JobRead

LEARN_JOB = "learn"


class Trigger(StrEnum):
    demand = "demand"
    events = "events"
    schedule = "schedule"
    drift = "drift"


def request_learning(session: Session, trigger: Trigger, actor: str) -> JobRead:
    """Queue a learning job (unless one is queued or running: that one is returned)."""
    return jobs.submit_once(session, LEARN_JOB, {"trigger": trigger.value}, actor)
