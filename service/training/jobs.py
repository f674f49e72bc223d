"""The ``train`` job's handler: a new model version trained on the events up to ``as_of``."""

from __future__ import annotations

from typing import Any

from service.jobs.kinds import JobKind
from service.jobs.registry import JobContext, job_handler
from service.model_versions.schemas import TrainParams
from service.training import protected
from service.training.runner import train_version


@job_handler(JobKind.train, params=TrainParams)
def train(job: JobContext, params: TrainParams) -> dict[str, Any]:
    version = train_version(
        job.session_factory,
        job.settings,
        as_of=params.as_of,
        horizon_days=params.horizon_days,
        architecture=params.architecture,
        epochs=params.epochs,
        with_protected_attributes=protected.requested(
            with_protected=params.with_protected_attributes,
            without_protected=params.without_protected_attributes,
        ),
        actor=job.actor,
        progress=job.progress,
        cancelled=job.cancelled,
    )
    return {"version": version.version, "aliases": version.aliases}
