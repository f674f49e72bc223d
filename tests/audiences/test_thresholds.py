"""``audience.count_crossed``: an audience's count moving across its threshold is POSTed once
per crossing to a real HTTP endpoint, from the workers' periodic check."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import Engine, update

from service.audiences.models import Audience
from service.audiences.service import check_thresholds
from service.background import job_runner
from service.config import Settings
from service.db.session import make_session_factory
from service.main import create_app
from service.scoring.service import Scorer, refresh_stale
from service.webhooks import service as webhooks
from tests.conftest import KeyFactory, ScoredShop, bearer
from tests.factories import batch, event
from tests.webhooks.test_webhooks import SECRET, Receiver


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    endpoint = Receiver()
    yield endpoint
    endpoint.server.shutdown()


@pytest.fixture
def hooked(scored_shop: ScoredShop, receiver: Receiver) -> Settings:
    return scored_shop.settings.model_copy(
        update={"webhook_url": receiver.url, "webhook_secret": SecretStr(SECRET)}
    )


def test_a_crossing_is_posted_once_each_way(
    hooked: Settings,
    receiver: Receiver,
    db: Engine,
    make_key: KeyFactory,
    apply_pending: Callable[[], int],
) -> None:
    factory = make_session_factory(db)
    admin = bearer(make_key("admin"))
    start = datetime.now(UTC)
    step = timedelta(seconds=hooked.audience_check_seconds + 1)

    def check(times: int) -> int:
        """A worker's check, ``times`` intervals after the start, then the deliveries."""
        queued = check_thresholds(factory, hooked, now=start + times * step)
        webhooks.deliver_due(factory, hooked, now=start + times * step)
        return queued

    with TestClient(create_app(hooked)) as client:
        created = client.post(
            "/v1/audiences",
            json={"name": "buyers", "filters": {"cold_start": False}},
            headers=admin,
        ).json()
        count = created["count"]["customers"]
        thresholds = {"notify_above": count, "notify_below": count + 1}
        watched = client.post(
            "/v1/audiences",
            json={"name": "watched buyers", "filters": {"cold_start": False}, **thresholds},
            headers=admin,
        ).json()
        order = event(customer_id="brand-new", occurred_at=datetime.now(UTC), amount="80.00")

        quiet = check(1)  # nothing moved
        client.post("/v1/events", json=batch(order), headers=admin)
        apply_pending()
        refresh_stale(factory, Scorer(hooked))
        rose, again = check(2), check(3)
        client.delete("/v1/customers/brand-new", headers=admin)
        fell, still = check(4), check(5)
        listed = client.get(f"/v1/audiences/{watched['id']}", headers=admin).json()

    assert watched["last_count"] == count
    assert (quiet, rose, again, fell, still) == (0, 1, 0, 1, 0)
    sent = [json.loads(body) for _, body in receiver.received]
    assert [s["event"] for s in sent] == ["audience.count_crossed"] * 2
    assert [s["data"]["direction"] for s in sent] == ["above", "below"]
    assert [(s["data"]["previous_count"], s["data"]["count"]) for s in sent] == [
        (count, count + 1),
        (count + 1, count),
    ]
    assert sent[0]["data"]["audience_id"] == watched["id"]
    assert sent[0]["data"]["threshold"] == count
    assert sent[0]["data"]["revenue"] > 0
    assert listed["last_count"] == count


def test_the_job_runners_check_the_audiences(
    hooked: Settings, receiver: Receiver, db: Engine, make_key: KeyFactory
) -> None:
    """Wired into every job runner's turn (``service.background``), at most every
    CLV_AUDIENCE_CHECK_SECONDS per process."""
    fast = hooked.model_copy(update={"audience_check_seconds": 0.2, "monitor_interval_minutes": 0})
    factory = make_session_factory(db)
    with TestClient(create_app(fast)) as client:
        created = client.post(
            "/v1/audiences",
            json={"name": "all", "notify_above": 0},
            headers=bearer(make_key("admin")),
        ).json()
    with factory() as session, session.begin():  # as if the previous check had counted none
        session.execute(update(Audience).values(last_count=0, checked_at=None))
    runner = job_runner(factory, fast)

    runner.turn()  # checks and queues
    runner.turn()  # too soon to check again; delivers
    time.sleep(0.25)
    runner.turn()  # checks again: nothing crossed

    [(headers, body)] = receiver.received
    assert headers["X-CLV-Event"] == "audience.count_crossed"
    assert json.loads(body)["data"]["count"] == created["count"]["customers"] > 0


def test_nothing_is_checked_without_a_webhook_url(scored_shop: ScoredShop, db: Engine) -> None:
    assert check_thresholds(make_session_factory(db), scored_shop.settings) == 0
