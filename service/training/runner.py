"""Train a model on the event store and register it (the CLI's ``clv train`` and the API's
training jobs run this), in this process or as one rank of several (``clv train --nproc``); and
``train_or_refuse``, the one way the services train, which turns data that cannot train into
their refusal."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Required, TypedDict, Unpack

import torch
from sqlalchemy.orm import Session, sessionmaker

from service.config import Settings
from service.db.queries import Shard
from service.errors import InvalidRequestError
from service.ml import collective
from service.ml.artifacts import device_for
from service.ml.clv_model import ClvModel
from service.ml.examples import EventLog, Profiles, Sources
from service.ml.insufficient import InsufficientDataError
from service.ml.training import Progress, TrainConfig, train
from service.model_versions import service as registry
from service.model_versions.schemas import ModelVersionRead
from service.training import data, protected


class TrainingOptions(TypedDict, total=False):
    """What ``train_model`` is asked, passed through by ``train_version`` and ``train_as_rank``."""

    as_of: Required[datetime]
    horizon_days: Required[int]
    architecture: str
    epochs: int
    with_protected_attributes: bool | None
    progress: Progress | None
    cancelled: Callable[[], bool] | None


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
    actor: str,
    **training: Unpack[TrainingOptions],
) -> ModelVersionRead:
    """A model trained in this process (``training``: ``train_model``'s options) and
    registered."""
    model = train_model(session_factory, settings, **training)
    return register_model(session_factory, settings, model, actor)


def train_model(
    session_factory: sessionmaker[Session],
    settings: Settings,
    *,
    as_of: datetime,
    horizon_days: int,
    architecture: str = "gru_ziln",
    epochs: int = 25,
    with_protected_attributes: bool | None = None,
    progress: Progress | None = None,
    cancelled: Callable[[], bool] | None = None,
    shard: Shard | None = None,
    device: str | None = None,
) -> ClvModel:
    """A model trained on the events up to ``as_of``. ``with_protected_attributes``: True or
    False as asked, None for ``CLV_TRAIN_WITH_PROTECTED_ATTRIBUTES`` (see
    ``service.training.protected``). ``shard``: this process's customers when it is one rank of a
    training across processes (``service.ml.collective``), which reads only theirs; ``device``:
    the rank's own device then (``cuda:<local rank>``), ``CLV_DEVICE`` otherwise."""
    with session_factory() as session:
        log = data.event_log(session, as_of, shard=shard)
        profiles, sources = data.profiles(session, settings, shard=shard)
    config = TrainConfig(
        horizon_days=horizon_days,
        architecture=architecture,
        epochs=epochs,
        device=device or device_for(settings.device),
        excluded_attributes=protected.excluded_attributes(settings, with_protected_attributes),
    )
    return train_or_refuse(
        log,
        profiles,
        sources,
        as_of,
        config,
        refusal=f"cannot train for {horizon_days} days",
        progress=progress,
        cancelled=cancelled,
    )


def register_model(
    session_factory: sessionmaker[Session], settings: Settings, model: ClvModel, actor: str
) -> ModelVersionRead:
    """Store ``model`` as a new version (champion if it is the first, challenger otherwise)."""
    with session_factory() as session, session.begin():
        version = registry.register(
            session, settings.model_dir, model, model.report.validation.to_json(), actor
        )
        return registry.read(session, version)


def run_ranks(processes: int, train_arguments: list[str]) -> None:
    """Run ``clv train`` as ``processes`` ranks on this machine through ``torchrun``'s launcher
    (``torch.distributed.run``, in this process), standalone (its own rendezvous on a free local
    port), each rank ``python -m service.cli train`` with ``train_arguments``, which must fix
    ``--as-of``: each rank reading "now" for itself would train on different data. Raises
    ``ChildFailedError`` when a rank fails (each rank has printed its own error by then).
    Several machines take ``torchrun``'s own ``--nnodes`` and ``--rdzv-endpoint`` instead
    (docs/operations.md)."""
    from torch.distributed.run import get_args_parser, run

    launch = ["--standalone", f"--nproc-per-node={processes}", "-m", "service.cli", "train"]
    run(get_args_parser().parse_args([*launch, *train_arguments]))  # type: ignore[no-untyped-call]


def train_as_rank(
    session_factory: sessionmaker[Session],
    settings: Settings,
    ranked: tuple[int, int, int],
    *,
    actor: str,
    **training: Unpack[TrainingOptions],
) -> ModelVersionRead | None:
    """This process's part of a training across ``torchrun``'s ranks (``ranked``: rank, world
    size, local rank): it joins the process group, trains on its shard of the customers, and
    rank 0 registers the model, which every rank holds (the others return None). ``training``:
    ``train_model``'s options."""
    rank, world, local_rank = ranked
    device = device_for(settings.device)
    if device.startswith("cuda"):
        device = f"cuda:{local_rank}"
        torch.cuda.set_device(device)
    with collective.process_group(device):
        model = train_model(
            session_factory,
            settings,
            shard=Shard(rank, world),
            device=device,
            **training,
        )
    return register_model(session_factory, settings, model, actor) if rank == 0 else None
