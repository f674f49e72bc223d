"""The learning loop's jobs: one run of the loop, and the matured accuracy of every version."""

from __future__ import annotations

from typing import Any

from service.jobs.kinds import JobKind
from service.jobs.registry import JobContext, handles
from service.learning import matured
from service.learning import service as learning


@handles(JobKind.learn)
def learn(job: JobContext) -> dict[str, Any]:
    return learning.run_job(
        job.session_factory,
        job.settings,
        job.params,
        job.actor,
        job.job_id,
        job.progress,
        job.cancelled,
    )


@handles(JobKind.accuracy)
def accuracy(job: JobContext) -> dict[str, Any]:
    return matured.refresh_accuracy(job.session_factory).model_dump(mode="json")
