"""Registered model versions, their aliases (champion, challenger) and the promotion log."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from service.db.base import Base
from service.db.types import JSONType, UTCDateTime


class ModelVersion(Base):
    """One trained model; its artifact folder lives under CLV_MODEL_DIR/<version>."""

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
