"""The ``drift`` job's handler: a drift check, stored as a report."""

from __future__ import annotations

from typing import Any

from service.drift import service as drift
from service.jobs.kinds import JobKind
from service.jobs.registry import JobContext, handles


@handles(JobKind.drift)
def check(job: JobContext) -> dict[str, Any]:
    return drift.run_job(job.session_factory, job.settings, job.params, job.actor, job.progress)
