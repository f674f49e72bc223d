"""Two ``clv serve`` processes on one PostgreSQL, each with a model directory of its own (as two
machines have): a version registered and promoted anywhere serves from both, loaded from the
model store; a version whose stored copy is corrupt is refused by both, visibly, while the
champion they have keeps serving."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
from sqlalchemy import create_engine, update

from service.auth import service as auth
from service.config import Settings
from service.db.session import make_session_factory
from service.events.worker import drain
from service.ml.clv_model import ClvModel
from service.model_versions import service as registry
from service.model_versions.models import ArtifactChunk
from tests.conftest import bearer, free_port
from tests.factories import batch, purchases
from tests.processes import ServerProcess

pytestmark = pytest.mark.slow


def what_it_serves(server: ServerProcess, headers: dict[str, str]) -> dict[str, Any]:
    """``GET /v1/serving`` and the version a score is computed with, from one process."""
    with httpx.Client(base_url=server.url, headers=headers, timeout=60) as http:
        serving: dict[str, Any] = http.get("/v1/serving").raise_for_status().json()
        score = http.get("/v1/customers/c-1/clv").raise_for_status().json()
    return {**serving, "scored_with": score["model_version"]}


def test_replicas_with_their_own_model_directories_serve_and_refuse_from_the_store(
    postgres_settings: Settings, small_model: ClvModel, tmp_path: Path
) -> None:
    trainer = postgres_settings.model_copy(update={"model_dir": tmp_path / "trainer"})
    engine = create_engine(trainer.database_url)
    factory = make_session_factory(engine)

    def register(note: str) -> str:
        with factory() as session, session.begin():
            row = registry.register(session, trainer.model_dir, small_model, {"n": note}, "t")
            return row.version

    first = register("first")
    with factory() as session, session.begin():
        _, token = auth.create_key(session, "replicas", [auth.Scope.admin])
    headers = bearer(token)
    servers = [
        ServerProcess(
            free_port(),
            {
                "CLV_DATABASE_URL": trainer.database_url,
                "CLV_MODEL_DIR": str(tmp_path / name),
                "CLV_WORKER": "off",
                "CLV_CHAMPION_CHECK_SECONDS": "0",
                "CLV_LOG_LEVEL": "WARNING",
            },
            tmp_path / f"{name}.log",
        )
        for name in ("a", "b")
    ]
    try:
        with ThreadPoolExecutor(2) as pool:  # start both at once: each start takes seconds
            list(pool.map(ServerProcess.start, servers))
        with httpx.Client(base_url=servers[0].url, headers=headers, timeout=60) as http:
            http.post("/v1/events", json=batch(*purchases("c-1", (0, "20"), (30, "35"))))
            drain(factory)
            serving_first = [what_it_serves(server, headers) for server in servers]
            second = register("second")
            promoted = http.post(f"/v1/models/{second}/promote", json={})
        serving_second = [what_it_serves(server, headers) for server in servers]

        third = register("third")
        with factory() as session, session.begin():  # the stored copy rots; the trainer's is fine
            session.execute(
                update(ArtifactChunk)
                .where(ArtifactChunk.version == third, ArtifactChunk.number == 0)
                .values(data=b"rotten")
            )
            registry.promote(session, trainer.model_dir, third, "champion", "t")
        refusing_third = [what_it_serves(server, headers) for server in servers]
    finally:
        for server in servers:
            server.stop()
        engine.dispose()

    assert [state["scored_with"] for state in serving_first] == [first, first]
    assert promoted.status_code == 200, promoted.text
    for state in serving_second:
        assert (state["registered"], state["serving"], state["scored_with"]) == (second,) * 3
        assert state["refused"] == []
    for state in refusing_third:
        assert (state["registered"], state["serving"]) == (third, second)
        assert state["scored_with"] == second
        assert [refused["version"] for refused in state["refused"]] == [third]
        assert "corrupt" in state["refused"][0]["reason"]
    assert len({state["pid"] for state in refusing_third}) == 2
    for name in ("a", "b"):  # each fetched what it serves, and cached nothing it refused
        assert sorted(p.name for p in (tmp_path / name).iterdir()) == sorted([first, second])
