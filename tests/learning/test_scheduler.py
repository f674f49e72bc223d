"""What starts the learning and monitoring jobs by itself: N new events, a cron schedule, the
monitoring interval; each fires once however many runners tick, and survives restarts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from service.background import job_runner
from service.config import Settings
from service.db.session import make_session_factory
from service.jobs.models import Job
from service.learning.models import LearningDecision
from service.learning.scheduler import Scheduler
from service.learning.schemas import Trigger
from service.learning.triggers import request_learning

T0 = datetime(2026, 3, 2, 2, 59, tzinfo=UTC)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def _jobs(factory: sessionmaker[Session]) -> list[tuple[str, str, dict[str, object]]]:
    with factory() as session:
        rows = session.scalars(select(Job).order_by(Job.id)).all()
        return [(j.kind, j.status, dict(j.params)) for j in rows]


def _send(client: TestClient, headers: dict[str, str], prefix: str, count: int) -> None:
    events = [
        {
            "event_id": f"{prefix}-{i}",
            "customer_id": "c-1",
            "type": "view",
            "occurred_at": "2026-01-05T10:00:00Z",
        }
        for i in range(count)
    ]
    answer = client.post("/v1/events", json={"events": events}, headers=headers)
    assert answer.json()["accepted"] == count


def test_every_n_events_queues_one_learning_job_that_records_why_it_could_not_learn(
    settings: Settings, db: Engine, client: TestClient, admin_headers: dict[str, str]
) -> None:
    settings = settings.model_copy(update={"learning_every_events": 5})
    factory, clock = make_session_factory(db), Clock(T0)
    _send(client, admin_headers, "old", 7)  # before the setting was seen: not counted
    first, second = Scheduler(factory, settings, clock), Scheduler(factory, settings, clock)
    assert first.tick() == []
    _send(client, admin_headers, "new", 4)
    assert second.tick() == []
    _send(client, admin_headers, "more", 1)
    assert second.tick() == ["learn"]
    assert first.tick() == []  # the bookmark moved for every runner
    assert _jobs(factory) == [("learn", "queued", {"trigger": "events"})]

    assert job_runner(factory, settings).run_once()
    decisions = client.get("/v1/learning/decisions", headers=admin_headers).json()
    assert decisions[0]["trigger"] == "events"
    assert decisions[0]["outcome"] == "skipped"
    assert decisions[0]["reasons"] == [
        "there is no champion yet: train one first (POST /v1/models)"
    ]


def test_a_cron_schedule_fires_at_its_times(settings: Settings, db: Engine) -> None:
    settings = settings.model_copy(update={"learning_schedule": "0 3 * * *"})
    factory, clock = make_session_factory(db), Clock(T0)
    scheduler = Scheduler(factory, settings, clock)
    assert scheduler.tick() == []  # 02:59: the next time is 03:00
    clock.now = T0 + timedelta(minutes=1, seconds=5)
    assert scheduler.tick() == ["learn"]
    clock.now = T0 + timedelta(hours=5)
    assert Scheduler(factory, settings, clock).tick() == []  # a restart does not repeat it
    clock.now = T0 + timedelta(days=1, minutes=2)
    assert scheduler.tick() == ["learn"]  # the job queued yesterday is still queued: no second
    assert [kind for kind, _, _ in _jobs(factory)] == ["learn"]


def test_monitoring_runs_every_interval_and_never_stacks(settings: Settings, db: Engine) -> None:
    settings = settings.model_copy(update={"monitor_interval_minutes": 60})
    factory, clock = make_session_factory(db), Clock(T0)
    scheduler = Scheduler(factory, settings, clock)
    assert scheduler.tick() == ["accuracy"]  # at once on first start; no champion: no drift
    clock.now = T0 + timedelta(minutes=30)
    assert scheduler.tick() == []
    assert job_runner(factory, settings).run_once()  # the accuracy job, over no scores
    clock.now = T0 + timedelta(minutes=61)
    assert scheduler.tick() == ["accuracy"]
    assert [(k, s) for k, s, _ in _jobs(factory)] == [
        ("accuracy", "succeeded"),
        ("accuracy", "queued"),
    ]
    off = settings.model_copy(update={"monitor_interval_minutes": 0})
    clock.now = T0 + timedelta(days=2)
    assert Scheduler(factory, off, clock).tick() == []


def test_automatic_triggers_cool_down_after_a_judged_run_but_a_request_does_not(
    settings: Settings, db: Engine, client: TestClient, admin_headers: dict[str, str]
) -> None:
    settings = settings.model_copy(update={"learning_every_events": 1})
    factory = make_session_factory(db)
    with factory() as session, session.begin():
        session.add(
            LearningDecision(
                decided_at=datetime.now(UTC) - timedelta(days=29),  # half a 60-day holdout: 30
                trigger="demand",
                mode="warm",
                outcome="kept",
                promoted=False,
                reasons=["…"],
                actor="t",
            )
        )
    scheduler = Scheduler(factory, settings, Clock(T0))
    assert scheduler.tick() == []
    _send(client, admin_headers, "new", 3)
    assert scheduler.tick() == []  # due, but cooling down: nothing queued
    assert _jobs(factory) == []
    with factory() as session, session.begin():
        assert request_learning(session, Trigger.demand, "t", settings) is not None
    assert [kind for kind, _, _ in _jobs(factory)] == ["learn"]
