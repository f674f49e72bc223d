"""The ``train`` job's handler: a new model version trained on the events up to ``as_of``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from service.jobs.kinds import JobKind
from service.jobs.registry import JobContext, handles
from service.training import protected
from service.training.runner import train_version


@handles(JobKind.train)
def train(job: JobContext) -> dict[str, Any]:
    params = job.params
    version = train_version(
        job.session_factory,
        job.settings,
        as_of=datetime.fromisoformat(params["as_of"]),
        horizon_days=params["horizon_days"],
        architecture=params["architecture"],
        epochs=params["epochs"],
        with_protected_attributes=protected.requested(
            with_protected=bool(params.get("with_protected_attributes")),
            without_protected=bool(params.get("without_protected_attributes")),
        ),
        actor=job.actor,
        progress=job.progress,
        cancelled=job.cancelled,
    )
    return {"version": version.version, "aliases": version.aliases}
