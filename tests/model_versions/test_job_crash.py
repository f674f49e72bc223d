"""A training job whose server is killed outright (SIGKILL) or stopped (SIGTERM) mid-way is
marked failed, saying why, and the champion is untouched and keeps serving."""

from __future__ import annotations

import signal
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
from sqlalchemy import Engine, select, update

from service.config import Settings
from service.db.session import make_session_factory
from service.events.models import Event
from service.jobs import repository as jobs_repository
from service.jobs.models import Job
from service.jobs.runner import SHUT_DOWN
from service.ml.clv_model import ClvModel
from service.model_versions import service as registry
from service.simulator.memory import end_of_observation
from tests.conftest import SHOP, KeyFactory, bearer, free_port
from tests.processes import ServerProcess

pytestmark = pytest.mark.slow


def wait_for_job(
    http: httpx.Client, job_id: int, done: Any, timeout: float = 120
) -> dict[str, Any]:
    deadline, job = time.monotonic() + timeout, {}
    while time.monotonic() < deadline:
        job: dict[str, Any] = http.get(f"/v1/jobs/{job_id}").json()
        if done(job):
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} never got there: {job}")


STOPS = {
    # Killed outright: nothing runs on the way out; the restarted service finds no heartbeat.
    "sigkill": (signal.SIGKILL, (-signal.SIGKILL,), jobs_repository.ABANDONED),
    # Stopped as an orchestrator does: the job ends at its next epoch and says why.
    "sigterm": (signal.SIGTERM, (0, -signal.SIGTERM), SHUT_DOWN),
}


@pytest.mark.parametrize("stop", STOPS)
def test_a_training_stopped_mid_way_is_marked_failed_and_the_champion_stays(
    model_settings: Settings,
    db: Engine,
    shop_in_database: Path,
    small_model: ClvModel,
    make_key: KeyFactory,
    tmp_path: Path,
    stop: str,
) -> None:
    sig, exit_statuses, reason = STOPS[stop]
    factory = make_session_factory(db)
    with factory() as session, session.begin():
        champion = registry.register(session, model_settings.model_dir, small_model, {}, "test")
        session.execute(update(Job).values(status="cancelled"))  # its rescoring: not needed here
        customer = session.scalar(select(Event.customer_id).limit(1))
    env = {
        "CLV_DATABASE_URL": model_settings.database_url,
        "CLV_MODEL_DIR": str(model_settings.model_dir),
        "CLV_JOB_HEARTBEAT_SECONDS": "0.5",
        "CLV_JOB_ABANDONED_AFTER_SECONDS": "3",
        "CLV_LOG_LEVEL": "WARNING",
    }
    server = ServerProcess(free_port(), env, tmp_path / "server.log").start()
    with httpx.Client(base_url=server.url, headers=bearer(make_key("admin")), timeout=10) as http:
        try:
            data_end = end_of_observation(SHOP) + timedelta(days=SHOP.horizon_days)
            body = {"horizon_days": 90, "epochs": 200, "as_of": data_end.isoformat()}
            submitted = http.post("/v1/models", json=body)
            job_id = submitted.json()["id"]
            # mid-way: building its examples or in its epochs (on this small shop the whole
            # training takes a few seconds, and progress is written at most once a second)
            wait_for_job(http, job_id, lambda j: j["status"] == "running", timeout=60)
            assert server.kill(sig) in exit_statuses
            server.start()
            failed = wait_for_job(http, job_id, lambda j: j["status"] != "running", timeout=30)
            versions = http.get("/v1/models").json()
            serving = http.get("/v1/serving").json()
            scored = http.get(f"/v1/customers/{customer}/clv")
        finally:
            server.stop()

    assert submitted.status_code == 202
    assert (failed["status"], failed["error"]) == ("failed", reason)
    assert [v["version"] for v in versions] == [champion.version]
    assert versions[0]["aliases"] == ["champion"]
    assert (serving["registered"], serving["serving"]) == (champion.version, champion.version)
    assert scored.json()["model_version"] == champion.version
