"""The registry: register trained models, list them, move aliases (with an append-only log).

Registering stores the artifact in the database with the version (``artifact_store``), so any
process can load it. A promotion loads the artifact first: a corrupt or mismatched one is refused
and the alias keeps pointing where it was. The first model registered becomes the champion;
later ones the challenger, until promoted. Every new champion queues a ``rescore`` job (stored
scores).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from service.errors import (
    ConflictError,
    InvalidRequestError,
    NotFoundError,
    ServiceError,
    refuse_future,
)
from service.jobs import service as jobs
from service.jobs.kinds import JobKind
from service.jobs.schemas import JobRead
from service.ml import artifacts
from service.ml.clv_model import ClvModel
from service.ml.metrics import finite
from service.ml.nets import list_models
from service.model_versions import artifact_store, repository
from service.model_versions.models import ModelAlias, ModelVersion, PromotionLog
from service.model_versions.schemas import (
    ModelVersionRead,
    PromotionRead,
    TrainParams,
    TrainRequest,
)
from service.scoring.schemas import RescoreParams


class ArtifactRefusedError(ServiceError):
    status_code = 409
    code = "artifact_refused"


def new_version_id(now: datetime) -> str:
    return f"clv-{now:%Y%m%d-%H%M%S-%f}"


def register(
    session: Session,
    model_dir: Path,
    model: ClvModel,
    metrics: dict[str, Any],
    actor: str,
    now: datetime | None = None,
) -> ModelVersion:
    """Save the artifact (in the model store, and in ``model_dir``, the local cache) and its
    row; alias it champion if there is none, else challenger."""
    now = now or datetime.now(UTC)
    metrics = finite(metrics)  # an undefined metric (no spend at all) is null, not NaN
    version_id = new_version_id(now)
    checksum = artifacts.save(model, model_dir / version_id, metrics)
    version = ModelVersion(
        version=version_id,
        architecture=model.architecture,
        horizon_days=model.horizon_days,
        trained_horizon_days=model.trained_horizon_days,
        data_from=model.report.data_from,
        data_to=model.report.as_of,
        sha256=checksum,
        metrics=metrics,
        created_at=now,
        created_by=actor,
    )
    repository.add(session, version)
    artifact_store.upload(session, version_id, model_dir / version_id)
    alias = "challenger" if "champion" in repository.aliases(session) else "champion"
    _point(session, alias, version_id, "register", actor, now)
    return version


def read(session: Session, version: ModelVersion) -> ModelVersionRead:
    aliases = [a for a, v in repository.aliases(session).items() if v == version.version]
    return ModelVersionRead(
        version=version.version,
        architecture=version.architecture,
        horizon_days=version.horizon_days,
        trained_horizon_days=version.trained_horizon_days,
        data_from=version.data_from,
        data_to=version.data_to,
        aliases=sorted(aliases),
        metrics=version.metrics,
        sha256=version.sha256,
        created_at=version.created_at,
        created_by=version.created_by,
    )


def list_versions(session: Session) -> list[ModelVersionRead]:
    return [read(session, v) for v in repository.all_versions(session)]


def get_version(session: Session, version: str) -> ModelVersion:
    found = repository.get(session, version)
    if found is None:
        raise NotFoundError(f"no model version {version!r}")
    return found


def promote(
    session: Session, model_dir: Path, version: str, alias: str, actor: str
) -> PromotionRead:
    _verify(session, model_dir, get_version(session, version), "promoted")
    return _point(session, alias, version, "promote", actor, datetime.now(UTC))


def rollback(
    session: Session, model_dir: Path, alias: str, actor: str, version: str | None = None
) -> PromotionRead:
    """Point ``alias`` back at ``version``, any version it pointed at before, or by default the
    one it pointed at before its current one. The artifact is verified first, as in a
    promotion."""
    current = repository.aliases(session).get(alias)
    if current is None:
        raise NotFoundError(f"no version is {alias}")
    entries = repository.history(session, alias)
    if version is None:
        earlier = [
            e.previous_version for e in entries if e.version == current and e.previous_version
        ]
        if not earlier:
            raise ConflictError(f"{alias} {current} has no earlier version to roll back to")
        version = earlier[0]
    elif version == current:
        raise ConflictError(f"{version} is already {alias}")
    elif version not in {e.version for e in entries}:
        get_version(session, version)  # 404 when it does not exist at all
        raise ConflictError(f"{version} was never {alias}: promote it instead")
    _verify(session, model_dir, get_version(session, version), "rolled back to")
    return _point(session, alias, version, "rollback", actor, datetime.now(UTC))


def _verify(session: Session, model_dir: Path, row: ModelVersion, action: str) -> None:
    """Load the artifact (from the cache or the store) as every process will; a version
    registered before the store existed is stored now, from this machine's verified folder."""
    try:
        artifact_store.load(session, model_dir, row)
    except artifacts.ArtifactError as error:
        raise ArtifactRefusedError(f"version {row.version} was not {action}: {error}") from None
    artifact_store.backfill(session, model_dir, row.version)


def _point(
    session: Session, alias: str, version: str, action: str, actor: str, now: datetime
) -> PromotionRead:
    row = repository.alias_for_update(session, alias)
    previous = row.version if row else None
    if row is None:
        session.add(ModelAlias(alias=alias, version=version, updated_at=now))
    else:
        row.version, row.updated_at = version, now
    entry = PromotionLog(
        alias=alias, version=version, previous_version=previous, action=action, actor=actor, at=now
    )
    repository.log(session, entry)
    if alias == "champion":  # every stored score is by the champion: rescore in the background
        jobs.submit(session, JobKind.rescore, RescoreParams(version=version), actor)
    return PromotionRead(
        alias=alias, version=version, previous_version=previous, action=action, actor=actor, at=now
    )


def history(session: Session) -> list[PromotionRead]:
    return [
        PromotionRead(
            alias=e.alias,
            version=e.version,
            previous_version=e.previous_version,
            action=e.action,
            actor=e.actor,
            at=e.at,
        )
        for e in repository.history(session)
    ]


def submit_training(session: Session, request: TrainRequest, actor: str) -> JobRead:
    """Queue a training job on the events up to ``as_of`` (default now), refusing an unknown
    architecture or a moment in the future before anything is queued."""
    if request.architecture not in list_models():
        raise InvalidRequestError(
            f"unknown architecture {request.architecture!r}; known: {', '.join(list_models())}"
        )
    refuse_future(request.as_of)
    as_of = request.as_of or datetime.now(UTC)
    params = TrainParams(**{**request.model_dump(), "as_of": as_of})
    return jobs.submit(session, JobKind.train, params, actor, whole=True)
