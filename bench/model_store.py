"""The model store: how long storing an artifact in the database and fetching it into an empty
local cache take, on SQLite and PostgreSQL, against copying the same folder on local disk and
against the cache hit (the checksum of the local copy) that every later load pays.

The artifact is synthetic: ``weights.safetensors`` of random bytes (incompressible, as trained
weights are) of each size, a small ``config.json`` and the checksum; a real one from ``clv demo``
(300 customers) is 0.4 MB, most of it ``config.json``.

    .venv/bin/python bench/model_store.py [--mib 1 16 64] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import report, scratch_postgres
from service.config import Settings
from service.db import migrations
from service.db.session import make_engine, make_session_factory
from service.ml import artifacts
from service.model_versions import artifact_store, repository
from service.model_versions.models import ModelVersion


def synthetic_artifact(folder: Path, mib: int) -> str:
    folder.mkdir(parents=True)
    (folder / artifacts.WEIGHTS).write_bytes(os.urandom(mib << 20))
    (folder / artifacts.CONFIG).write_text('{"format": 3}')
    checksum = artifacts.digest(folder)
    (folder / artifacts.CHECKSUM).write_text(checksum + "\n")
    return checksum


def best_of(repeats: int, work: Callable[[int], Any]) -> float:
    """The fastest of ``repeats`` runs, in seconds (the least disturbed by the machine's load)."""
    times = []
    for attempt in range(repeats):
        started = time.perf_counter()
        work(attempt)
        times.append(time.perf_counter() - started)
    return min(times)


def measure(url: str, scratch: Path, mib: int, repeats: int) -> dict[str, float]:
    settings = Settings(_env_file=None, database_url=url)  # type: ignore[call-arg]
    engine = make_engine(settings)
    factory = make_session_factory(engine)
    source = scratch / f"source-{mib}"
    checksum = synthetic_artifact(source, mib)
    now = datetime.now(UTC)

    def store(attempt: int) -> None:
        with factory() as session, session.begin():
            version = f"bench-{mib}-{attempt}"
            repository.add(
                session,
                ModelVersion(
                    version=version,
                    architecture="bench",
                    horizon_days=90,
                    trained_horizon_days=90,
                    data_from=now,
                    data_to=now,
                    sha256=checksum,
                    metrics={},
                    created_at=now,
                    created_by="bench",
                ),
            )
            artifact_store.upload(session, version, source)

    def fetch(attempt: int) -> None:
        version = f"bench-{mib}-{attempt}"
        with factory() as session:
            files = repository.artifact_files(session, version)
            artifact_store.fetch(session, files, scratch / f"cache-{attempt}" / version, checksum)

    stored = best_of(repeats, store)
    fetched = best_of(repeats, fetch)
    copied = best_of(repeats, lambda a: shutil.copytree(source, scratch / f"copy-{mib}-{a}"))
    hit = best_of(repeats, lambda _: artifact_store.is_cached(source, checksum))
    engine.dispose()
    for path in scratch.iterdir():
        shutil.rmtree(path)
    return {"store_s": stored, "fetch_s": fetched, "local_copy_s": copied, "cache_hit_s": hit}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, nargs="+", default=[1, 16, 64])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    result: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp, scratch_postgres() as postgres:
        sqlite = f"sqlite:///{tmp}/store.db"
        migrations.upgrade(sqlite)
        scratch = Path(tmp) / "scratch"
        scratch.mkdir()
        for backend, url in (("sqlite", sqlite), ("postgresql", postgres)):
            for mib in args.mib:
                figures = measure(url, scratch, mib, args.repeats)
                for name, seconds in figures.items():
                    result[f"{backend}_{mib}mib_{name}"] = round(seconds, 4)
                rate = mib / figures["fetch_s"]
                result[f"{backend}_{mib}mib_fetch_mib_per_s"] = round(rate, 1)
                ratio = figures["fetch_s"] / figures["local_copy_s"]
                result[f"{backend}_{mib}mib_fetch_vs_local_copy"] = round(ratio, 1)
    report("model_store", result)


if __name__ == "__main__":
    main()
