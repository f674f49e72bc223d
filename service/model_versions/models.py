"""Registered model versions, their aliases (champion, challenger) and the promotion log."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, ForeignKeyConstraint, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from service.db.base import Base
from service.db.types import JSONType, UTCDateTime

CHUNK_BYTES = 1 << 20
"""A stored artifact file is cut into rows of this many bytes: a mebibyte is small enough that
no statement (or driver buffer) holds a whole model, large enough that a model is a few rows."""


class ModelVersion(Base):
    """One trained model; its artifact is stored with it (``ArtifactFile``, ``ArtifactChunk``)
    and copied into CLV_MODEL_DIR/<version>, a cache, by each process that loads it."""

    __tablename__ = "model_versions"

    version: Mapped[str] = mapped_column(String(64), primary_key=True)
    architecture: Mapped[str] = mapped_column(String(64))
    horizon_days: Mapped[int] = mapped_column(Integer)
    trained_horizon_days: Mapped[int] = mapped_column(Integer)
    data_from: Mapped[datetime] = mapped_column(UTCDateTime())
    data_to: Mapped[datetime] = mapped_column(UTCDateTime())
    sha256: Mapped[str] = mapped_column(String(64))
    metrics: Mapped[dict[str, Any]] = mapped_column(JSONType)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[str] = mapped_column(String(64))


class ModelAlias(Base):
    """Which version an alias (``champion``, ``challenger``) points at."""

    __tablename__ = "model_aliases"

    alias: Mapped[str] = mapped_column(String(32), primary_key=True)
    version: Mapped[str] = mapped_column(ForeignKey("model_versions.version"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class PromotionLog(Base):
    """Append-only: every alias change, who made it and when."""

    __tablename__ = "promotion_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    alias: Mapped[str] = mapped_column(String(32))
    version: Mapped[str] = mapped_column(String(64))
    previous_version: Mapped[str | None] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(16))  # promote | rollback | register
    actor: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UTCDateTime())


class ArtifactFile(Base):
    """One file of a version's artifact (``weights.safetensors``, ``config.json``,
    ``checksum.sha256``): its size and sha256, checked when a process copies it from the store,
    and how many chunks hold its bytes."""

    __tablename__ = "model_artifact_files"

    version: Mapped[str] = mapped_column(ForeignKey("model_versions.version"), primary_key=True)
    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    chunks: Mapped[int] = mapped_column(Integer)


class ArtifactChunk(Base):
    """Bytes ``number * CHUNK_BYTES`` onwards of one artifact file (bytea on PostgreSQL, a blob
    on SQLite): rows of at most a mebibyte, so no statement moves a whole model at once."""

    __tablename__ = "model_artifact_chunks"
    __table_args__ = (
        ForeignKeyConstraint(
            ["version", "name"],
            ["model_artifact_files.version", "model_artifact_files.name"],
            ondelete="CASCADE",
        ),
    )

    version: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    number: Mapped[int] = mapped_column(Integer, primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)
