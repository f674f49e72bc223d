"""Train a model on the event store and register it (the CLI's ``clv train`` and the API's
training jobs run this); and ``train_or_refuse``, the one way the services train, which turns
data that cannot train into their refusal."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from service.config import Settings
from service.errors import InvalidRequestError
from service.ml.artifacts import device_for
from service.ml.clv_model import ClvModel
from service.ml.examples import EventLog, Profiles, Sources
from service.ml.insufficient import InsufficientDataError
from service.ml.training import Progress, TrainConfig, train
from service.model_versions import service as registry
from service.model_versions.schemas import ModelVersionRead
from service.training import data, protected


def train_or_refuse(
    log: EventLog,
    profiles: Profiles,
    sources: Sources,
    as_of: datetime,
    config: TrainConfig,
    *,
    refusal: str,
    refused: Callable[[str], Exception] = InvalidRequestError,
    progress: Progress | None = None,
    cancelled: Callable[[], bool] | None = None,
    start_from: ClvModel | None = None,
) -> ClvModel:
    """``train``, with data that cannot train (``InsufficientDataError``, and training's
    ``DataTooShortError``) raised as ``refused`` (a 422 unless the caller has its own, as the
    learning loop's skipped run) saying ``"{refusal}: {what is missing}"``; ``ml`` knows nothing
    of the service's errors, so the mapping lives here, once."""
    try:
        return train(
            log, profiles, sources, as_of, config, progress, cancelled, start_from=start_from
        )
    except InsufficientDataError as error:
        raise refused(f"{refusal}: {error}") from None


def train_version(
    session_factory: sessionmaker[Session],
    settings: Settings,
    *,
    as_of: datetime,
    horizon_days: int,
    architecture: str = "gru_ziln",
    epochs: int = 25,
    with_protected_attributes: bool | None = None,
    actor: str,
    progress: Progress | None = None,
    cancelled: Callable[[], bool] | None = None,
) -> ModelVersionRead:
    """``with_protected_attributes``: True or False as asked, None for
    ``CLV_TRAIN_WITH_PROTECTED_ATTRIBUTES`` (see ``service.training.protected``)."""
    with session_factory() as session:
        log = data.event_log(session, as_of)
        profiles, sources = data.profiles(session, settings)
    config = TrainConfig(
        horizon_days=horizon_days,
        architecture=architecture,
        epochs=epochs,
        device=device_for(settings.device),
        excluded_attributes=protected.excluded_attributes(settings, with_protected_attributes),
    )
    model = train_or_refuse(
        log,
        profiles,
        sources,
        as_of,
        config,
        refusal=f"cannot train for {horizon_days} days",
        progress=progress,
        cancelled=cancelled,
    )
    with session_factory() as session, session.begin():
        version = registry.register(
            session, settings.model_dir, model, model.report.validation.to_json(), actor
        )
        return registry.read(session, version)
