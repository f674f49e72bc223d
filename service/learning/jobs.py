"""The learning loop's jobs: one run of the loop, and the matured accuracy of every version."""

from __future__ import annotations

import logging
from typing import Any

from service.jobs.kinds import JobKind
from service.jobs.registry import JobContext, NoParams, job_handler
from service.learning import matured
from service.learning import service as learning
from service.learning.schemas import DECISION_IN_BRIEF, LearnParams, Trigger
from service.training.holdout import ThinHoldoutError

logger = logging.getLogger(__name__)


@job_handler(JobKind.learn, params=LearnParams)
def learn(job: JobContext, params: LearnParams) -> dict[str, Any]:
    """One run of the loop; its result is the decision in brief. A holdout too thin to judge
    on fails a job asked for (the error says why); an automatic trigger's job skips quietly:
    the reason is logged and is its result, and no decision is stored."""
    try:
        decided = learning.learn(
            job.session_factory,
            job.settings,
            trigger=params.trigger,
            actor=job.actor,
            as_of=params.as_of,
            mode=params.mode,
            challenger=params.challenger,
            job_id=job.job_id,
            progress=job.progress,
            cancelled=job.cancelled,
        )
    except ThinHoldoutError as thin:
        if params.trigger is Trigger.demand:
            raise
        logger.info("learning (%s trigger) not run: %s", params.trigger.value, thin.message)
        return {"outcome": "not_run", "reasons": [thin.message]}
    return decided.model_dump(mode="json", include=DECISION_IN_BRIEF)


@job_handler(JobKind.accuracy, params=NoParams)
def accuracy(job: JobContext, _params: NoParams) -> dict[str, Any]:
    return matured.refresh_accuracy(job.session_factory, job.settings).model_dump(mode="json")
