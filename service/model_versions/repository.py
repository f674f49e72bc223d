"""SQL for the model registry."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.model_versions.models import ModelAlias, ModelVersion, PromotionLog


def add(session: Session, version: ModelVersion) -> None:
    session.add(version)
    session.flush()


def get(session: Session, version: str) -> ModelVersion | None:
    return session.get(ModelVersion, version)


def metrics_of(session: Session, versions: Sequence[str]) -> dict[str, dict[str, Any]]:
    """The stored training metrics of these versions (those registered), in one read."""
    query = select(ModelVersion.version, ModelVersion.metrics)
    return dict(session.execute(query.where(ModelVersion.version.in_(versions))).tuples().all())


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
