"""The ``rescore`` job's handler: every customer's score by a new champion."""

from __future__ import annotations

from typing import Any

from service.jobs.kinds import JobKind
from service.jobs.registry import JobContext, job_handler
from service.scoring.schemas import RescoreParams
from service.scoring.service import Scorer, rescore_all


@job_handler(JobKind.rescore, params=RescoreParams)
def rescore(job: JobContext, params: RescoreParams) -> dict[str, Any]:
    """With the process's scorer, so the API and the event worker beside it use the champion
    it loads."""
    scorer = job.resource(Scorer)
    return rescore_all(job.session_factory, scorer, params.version, job.progress, job.cancelled)
