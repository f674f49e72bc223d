"""``/v1/models`` and ``/v1/promotions``: train, inspect, promote, roll back."""

from __future__ import annotations

from fastapi import status

from service.api.deps import AdminKey, ReadKey, SessionDep, SettingsDep
from service.api.params import VersionPath
from service.api.responses import error_responses
from service.api.routing import domain_router
from service.jobs.schemas import JobRead
from service.model_versions import service
from service.model_versions.schemas import (
    ModelVersionRead,
    PromoteRequest,
    PromotionRead,
    RollbackRequest,
    TrainRequest,
)

router = domain_router(prefix="/v1", tags=["models"])


@router.post(
    "/models",
    operation_id="train_model",
    summary="Train a model (as a job)",
    status_code=status.HTTP_202_ACCEPTED,
    responses=error_responses(401, 403, 422),
)
def train_model(request: TrainRequest, session: SessionDep, key: AdminKey) -> JobRead:
    """Queue training on the events up to `as_of` (default now); a worker runs it. Follow it at
    `GET /v1/jobs/{id}`; the result names the new version (champion if it is the first)."""
    return service.submit_training(session, request, key.name)


@router.get(
    "/models",
    operation_id="list_models",
    summary="Registered models",
    responses=error_responses(401, 403),
)
def list_model_versions(session: SessionDep, _key: ReadKey) -> list[ModelVersionRead]:
    """Every version, newest first, with its aliases, data window and validation metrics."""
    return service.list_versions(session)


@router.get(
    "/models/{version}",
    operation_id="get_model",
    summary="One registered model",
    responses=error_responses(401, 403, 404, 422),
)
def get_model_version(version: VersionPath, session: SessionDep, _key: ReadKey) -> ModelVersionRead:
    return service.read(session, service.get_version(session, version))


@router.post(
    "/models/{version}/promote",
    operation_id="promote_model",
    summary="Point an alias at a version",
    responses=error_responses(401, 403, 404, 409, 422),
)
def promote_model(
    version: VersionPath,
    request: PromoteRequest,
    session: SessionDep,
    settings: SettingsDep,
    key: AdminKey,
) -> PromotionRead:
    """The artifact is loaded and verified first; a corrupt or mismatched one is refused (409)
    and the alias keeps its version."""
    return service.promote(session, settings.model_dir, version, request.alias, key.name)


@router.post(
    "/models/rollback",
    operation_id="rollback_model",
    summary="Point an alias back at an earlier version",
    responses=error_responses(401, 403, 404, 409, 422),
)
def rollback_model(
    request: RollbackRequest, session: SessionDep, settings: SettingsDep, key: AdminKey
) -> PromotionRead:
    """Back to `version` (any version the alias pointed at before) or, without it, to the one
    before the current one. Its artifact is verified first (409 when refused)."""
    return service.rollback(session, settings.model_dir, request.alias, key.name, request.version)


@router.get(
    "/promotions",
    operation_id="list_promotions",
    summary="The promotion log",
    responses=error_responses(401, 403),
)
def list_promotions(session: SessionDep, _key: ReadKey) -> list[PromotionRead]:
    """Every alias change, newest first: who pointed which alias at which version, and when."""
    return service.history(session)
