"""SQL for the model registry."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from service.model_versions.models import (
    ArtifactChunk,
    ArtifactFile,
    ModelAlias,
    ModelVersion,
    PromotionLog,
)


def add(session: Session, version: ModelVersion) -> None:
    session.add(version)
    session.flush()


def get(session: Session, version: str) -> ModelVersion | None:
    return session.get(ModelVersion, version)


def metrics_of(session: Session, versions: Sequence[str]) -> dict[str, dict[str, Any]]:
    """The stored training metrics of these versions (those registered), in one read."""
    query = select(ModelVersion.version, ModelVersion.metrics)
    return dict(session.execute(query.where(ModelVersion.version.in_(versions))).all())


def all_versions(session: Session) -> Sequence[ModelVersion]:
    return session.scalars(select(ModelVersion).order_by(ModelVersion.created_at.desc())).all()


def aliases(session: Session) -> dict[str, str]:
    return {row.alias: row.version for row in session.scalars(select(ModelAlias))}


def alias_for_update(session: Session, alias: str) -> ModelAlias | None:
    return session.scalars(
        select(ModelAlias).where(ModelAlias.alias == alias).with_for_update()
    ).one_or_none()


def log(session: Session, entry: PromotionLog) -> None:
    session.add(entry)
    session.flush()


def history(session: Session, alias: str | None = None) -> Sequence[PromotionLog]:
    query = select(PromotionLog).order_by(PromotionLog.id.desc())
    if alias is not None:
        query = query.where(PromotionLog.alias == alias)
    return session.scalars(query).all()


def artifact_files(session: Session, version: str) -> Sequence[ArtifactFile]:
    """The stored files of a version's artifact; empty for one registered before the store."""
    query = select(ArtifactFile).where(ArtifactFile.version == version)
    query = query.order_by(ArtifactFile.name).execution_options(populate_existing=True)
    return session.scalars(query).all()


def add_artifact_file(
    session: Session, version: str, name: str, size: int, sha256: str, chunks: int
) -> None:
    """The file's row, written before its chunks (which refer to it)."""
    values = {"version": version, "name": name, "size": size, "sha256": sha256, "chunks": chunks}
    session.execute(insert(ArtifactFile).values(**values))


def add_chunk(session: Session, version: str, name: str, number: int, data: bytes) -> None:
    """A Core insert: the chunk's bytes are not kept in the session once sent."""
    values = {"version": version, "name": name, "number": number, "data": data}
    session.execute(insert(ArtifactChunk).values(**values))


def chunk(session: Session, version: str, name: str, number: int) -> bytes | None:
    """One chunk's bytes, or None when the row is missing."""
    query = select(ArtifactChunk.data).where(
        ArtifactChunk.version == version,
        ArtifactChunk.name == name,
        ArtifactChunk.number == number,
    )
    return session.execute(query).scalar_one_or_none()


def delete_artifact(session: Session, version: str) -> None:
    """Every stored file of the version, their chunks first."""
    session.execute(delete(ArtifactChunk).where(ArtifactChunk.version == version))
    session.execute(delete(ArtifactFile).where(ArtifactFile.version == version))
