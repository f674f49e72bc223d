"""Every table, imported in one place so the metadata is complete for Alembic and erasure."""

from service.audiences.models import Audience
from service.auth.models import ApiKey
from service.customers.models import CustomerAttributes, CustomerProfile
from service.events.models import DeadLetter, Event, EventId, PendingEvent
from service.jobs.models import Job
from service.learning.models import LearningDecision, SchedulerMark
from service.model_versions.models import (
    ArtifactChunk,
    ArtifactFile,
    ModelAlias,
    ModelVersion,
    PromotionLog,
)
from service.portrait.models import CustomerDay, CustomerProduct, Product
from service.reports.models import Report
from service.scoring.models import (
    Score,
    ScoreDeciles,
    ScoreHistory,
    StaleScore,
    UnexplainedScore,
)
from service.webhooks.models import WebhookDelivery

__all__ = [
    "ApiKey",
    "ArtifactChunk",
    "ArtifactFile",
    "Audience",
    "CustomerAttributes",
    "CustomerDay",
    "CustomerProduct",
    "CustomerProfile",
    "DeadLetter",
    "Event",
    "EventId",
    "Job",
    "LearningDecision",
    "ModelAlias",
    "ModelVersion",
    "PendingEvent",
    "Product",
    "PromotionLog",
    "Report",
    "SchedulerMark",
    "Score",
    "ScoreDeciles",
    "ScoreHistory",
    "StaleScore",
    "UnexplainedScore",
    "WebhookDelivery",
]
