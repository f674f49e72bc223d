"""The model store: a registered version's artifact lives in the database (in chunks) and each
process's model directory is a cache of it, checked before use and refilled from the store;
a damaged stored copy is refused and never cached."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import Engine, delete, func, select, update

from service.config import Settings
from service.db.session import make_session_factory
from service.ml import artifacts
from service.ml.clv_model import ClvModel
from service.model_versions import artifact_store
from service.model_versions import repository as versions
from service.model_versions import service as registry
from service.model_versions.models import ArtifactChunk
from service.model_versions.service import ArtifactRefusedError
from service.model_versions.store import load_version
from tests.model_versions.test_registry import register

SMALL_CHUNKS = 16 * 1024  # several chunks per file, however small the test model


def load(db: Engine, model_dir: Path, version: str) -> ClvModel:
    with make_session_factory(db)() as session:
        return load_version(session, model_dir, version, "cpu")[1]


def stored_in_small_chunks(db: Engine, settings: Settings, model: ClvModel) -> str:
    """A version registered from ``settings.model_dir``, stored again in small chunks."""
    version = register(db, settings, model, "chunked")
    with make_session_factory(db)() as session, session.begin():
        artifact_store.upload(session, version, settings.model_dir / version, SMALL_CHUNKS)
    return version


def files_of(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


def test_another_process_loads_a_registered_version_from_the_store_then_from_its_cache(
    model_settings: Settings, db: Engine, small_model: ClvModel, tmp_path: Path
) -> None:
    version = stored_in_small_chunks(db, model_settings, small_model)
    elsewhere = tmp_path / "another-machine"
    with db.connect() as connection:
        chunks = connection.scalar(select(func.count()).select_from(ArtifactChunk))

    fetched = load(db, elsewhere, version)
    with make_session_factory(db)() as session, session.begin():
        versions.delete_artifact(session, version)  # the cache alone must serve from now on
    cached = load(db, elsewhere, version)

    assert (chunks or 0) > 3
    assert files_of(elsewhere / version) == files_of(model_settings.model_dir / version)
    assert fetched.architecture == cached.architecture == small_model.architecture
    assert [p.name for p in elsewhere.iterdir()] == [version]  # no staging folder left


def test_a_damaged_cached_copy_is_replaced_from_the_store(
    model_settings: Settings, db: Engine, small_model: ClvModel
) -> None:
    version = register(db, model_settings, small_model, "cached")
    weights = model_settings.model_dir / version / artifacts.WEIGHTS
    intact = weights.read_bytes()
    weights.write_bytes(intact[:100])

    model = load(db, model_settings.model_dir, version)

    assert model.architecture == small_model.architecture
    assert weights.read_bytes() == intact


def cut_short(db: Engine, version: str) -> None:
    with make_session_factory(db)() as session, session.begin():
        last = select(func.max(ArtifactChunk.number)).where(
            ArtifactChunk.version == version, ArtifactChunk.name == artifacts.WEIGHTS
        )
        session.execute(
            delete(ArtifactChunk).where(
                ArtifactChunk.version == version,
                ArtifactChunk.name == artifacts.WEIGHTS,
                ArtifactChunk.number == last.scalar_subquery(),
            )
        )


def overwritten(db: Engine, version: str) -> None:
    with make_session_factory(db)() as session, session.begin():
        session.execute(
            update(ArtifactChunk)
            .where(ArtifactChunk.version == version, ArtifactChunk.number == 1)
            .values(data=b"\x00" * SMALL_CHUNKS)
        )


@pytest.mark.parametrize("damage", [cut_short, overwritten], ids=["truncated", "corrupt"])
def test_a_damaged_stored_artifact_is_refused_and_nothing_is_cached(
    model_settings: Settings,
    db: Engine,
    small_model: ClvModel,
    tmp_path: Path,
    damage: Callable[[Engine, str], None],
) -> None:
    version = stored_in_small_chunks(db, model_settings, small_model)
    damage(db, version)
    elsewhere = tmp_path / "another-machine"

    with pytest.raises(ArtifactRefusedError, match=r"stored artifact .* is corrupt"):
        load(db, elsewhere, version)
    assert list(elsewhere.iterdir()) == []
    assert load(db, model_settings.model_dir, version)  # the trainer's verified copy still loads


def test_a_version_registered_before_the_store_is_stored_when_promoted_where_its_folder_is(
    model_settings: Settings, db: Engine, small_model: ClvModel, tmp_path: Path
) -> None:
    register(db, model_settings, small_model, "champion")
    version = register(db, model_settings, small_model, "from before the store")
    factory = make_session_factory(db)
    with factory() as session, session.begin():
        versions.delete_artifact(session, version)
    elsewhere = tmp_path / "another-machine"

    with pytest.raises(ArtifactRefusedError, match="is incomplete: the model store holds no"):
        load(db, elsewhere, version)
    local = load(db, model_settings.model_dir, version)
    with factory() as session, session.begin():
        registry.promote(session, model_settings.model_dir, version, "champion", "test")
    fetched = load(db, elsewhere, version)

    assert local.architecture == fetched.architecture
    assert files_of(elsewhere / version) == files_of(model_settings.model_dir / version)


def test_processes_fetching_the_same_version_at_once_share_one_intact_copy(
    model_settings: Settings, db: Engine, small_model: ClvModel, tmp_path: Path
) -> None:
    version = stored_in_small_chunks(db, model_settings, small_model)
    shared = tmp_path / "shared-cache"
    start, loaded, failed = threading.Barrier(4), [], []

    def fetch() -> None:
        start.wait()
        try:
            loaded.append(load(db, shared, version))
        except Exception as error:  # collected, asserted below
            failed.append(error)

    threads = [threading.Thread(target=fetch) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert (len(loaded), failed) == (4, [])
    assert [p.name for p in shared.iterdir()] == [version]
    assert files_of(shared / version) == files_of(model_settings.model_dir / version)
