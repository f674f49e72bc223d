"""The model store: every registered version's artifact kept in the database, the local model
directory (``CLV_MODEL_DIR``) a cache of it.

Replicas share nothing but the database, so the artifact is written there, in chunks
(``model_artifact_chunks``), in the transaction that registers the version: a version that is
registered always has its artifact, on every machine. A process loading a version uses its
local copy when that copy matches the registered checksum, and otherwise copies the stored
files into the cache: into a fresh folder first, each file checked against its stored size and
sha256, then renamed into place, so two processes fetching at once never leave a half-written
folder. ``artifacts.load`` then verifies the copy as it verifies any folder (checksum, feature
schema, weights).

A version registered before the store existed has no stored files: it loads from the local
folder as before, and its first promotion or rollback on a machine holding that folder stores
it (``backfill``).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import shutil
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

from sqlalchemy.orm import Session

from service.ml import artifacts
from service.ml.clv_model import ClvModel
from service.model_versions import repository
from service.model_versions.models import CHUNK_BYTES, ArtifactFile, ModelVersion

logger = logging.getLogger(__name__)


def upload(session: Session, version: str, folder: Path, chunk_bytes: int = CHUNK_BYTES) -> int:
    """Store the files of ``folder`` as the version's artifact, replacing any stored before;
    returns the bytes stored. The version's row must exist (the files refer to it)."""
    repository.delete_artifact(session, version)
    stored = 0
    for path in sorted(p for p in folder.iterdir() if p.is_file()):
        with path.open("rb") as source:
            sha256 = hashlib.file_digest(source, "sha256").hexdigest()
            size, chunks = source.tell(), -(-source.tell() // chunk_bytes)
            repository.add_artifact_file(session, version, path.name, size, sha256, chunks)
            source.seek(0)
            for number in range(chunks):
                data = source.read(chunk_bytes)
                repository.add_chunk(session, version, path.name, number, data)
        stored += size
    return stored


def backfill(session: Session, model_dir: Path, version: str) -> bool:
    """Store the local folder of a version registered before the store existed (call it once
    the folder is verified); False when the store holds the version already."""
    if repository.artifact_files(session, version):
        return False
    stored = upload(session, version, model_dir / version)
    logger.info("stored %s's local artifact in the model store (%d bytes)", version, stored)
    return True


def load(session: Session, model_dir: Path, row: ModelVersion, device: str = "cpu") -> ClvModel:
    """The version's model from the local cache, fetched from the store first when the cache
    lacks a copy that matches the registered checksum; ``artifacts.ArtifactError`` says why it
    cannot be loaded."""
    folder = model_dir / row.version
    if not is_cached(folder, row.sha256):
        files = repository.artifact_files(session, row.version)
        if files:
            fetch(session, files, folder, row.sha256)
        elif not folder.exists():
            raise artifacts.ArtifactError(
                f"{folder} is incomplete: the model store holds no artifact for {row.version} "
                "(registered before the store existed) and this machine has no copy of it"
            )
    return artifacts.load(folder, device, expected_checksum=row.sha256)


def is_cached(folder: Path, sha256: str) -> bool:
    """Whether ``folder`` holds the artifact with this checksum, intact."""
    try:
        recorded = (folder / artifacts.CHECKSUM).read_text().strip()
        return recorded == sha256 == artifacts.digest(folder)
    except OSError:
        return False


def fetch(session: Session, files: Sequence[ArtifactFile], folder: Path, sha256: str) -> None:
    """Copy the stored files into ``folder`` (the cache) through a staging folder beside it,
    renamed into place once every file matches its stored size and sha256 and the whole the
    registered checksum: ``artifacts.ArtifactError``, and nothing in the cache, when the stored
    copy is damaged or the cache cannot be written."""
    started = time.perf_counter()
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
        staging.chmod(0o755)  # as the folders registering writes, not mkdtemp's private 0700
    except OSError as error:
        raise artifacts.ArtifactError(f"{folder} cannot be written: {error}") from None
    try:
        for file in files:
            _write(session, file, staging)
        if not is_cached(staging, sha256):
            raise artifacts.ArtifactError(
                f"the stored artifact of {folder.name} is corrupt: its files do not match the "
                "registered sha256 checksum"
            )
        _install(staging, folder, sha256)
    except OSError as error:
        raise artifacts.ArtifactError(f"{folder} cannot be written: {error}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    size = sum(file.size for file in files)
    elapsed = time.perf_counter() - started
    logger.info("fetched %s (%d bytes) from the model store in %.3f s", folder.name, size, elapsed)


def _write(session: Session, file: ArtifactFile, staging: Path) -> None:
    """One stored file into ``staging``, chunk by chunk, checked as it is written."""
    if file.name != Path(file.name).name or file.name.startswith("."):
        raise artifacts.ArtifactError(
            f"the stored artifact of {file.version} names a file {file.name!r} outside its folder"
        )
    hasher, size = hashlib.sha256(), 0
    with (staging / file.name).open("wb") as target:
        for number in range(file.chunks):
            data = repository.chunk(session, file.version, file.name, number)
            if data is None:
                raise artifacts.ArtifactError(
                    f"the stored artifact of {file.version} is corrupt: chunk {number} of "
                    f"{file.name} is missing"
                )
            hasher.update(data)
            size += target.write(data)
    if size != file.size or hasher.hexdigest() != file.sha256:
        raise artifacts.ArtifactError(
            f"the stored artifact of {file.version} is corrupt: {file.name} does not match its "
            "stored size and sha256"
        )


def _install(staging: Path, folder: Path, sha256: str) -> None:
    """Rename the checked ``staging`` folder to ``folder``. A good copy another process put
    there meanwhile is kept; a damaged one is moved aside and removed first."""
    for _attempt in range(3):
        try:
            staging.rename(folder)
            return
        except OSError:
            if is_cached(folder, sha256):
                return
        aside = folder.with_name(f".{folder.name}.stale-{uuid.uuid4().hex[:8]}")
        with contextlib.suppress(FileNotFoundError):
            folder.rename(aside)
        shutil.rmtree(aside, ignore_errors=True)
    raise OSError(f"{folder} kept changing while it was replaced")
