"""The ``rescore`` job's handler: every customer's score by a new champion."""

from __future__ import annotations

from typing import Any

from service.jobs.kinds import JobKind
from service.jobs.registry import JobContext, handles
from service.scoring.service import rescore_all


@handles(JobKind.rescore)
def rescore(job: JobContext) -> dict[str, Any]:
    return rescore_all(
        job.session_factory, job.scorer, job.params["version"], job.progress, job.cancelled
    )
