"""Mounts every domain router on the app."""

from fastapi import FastAPI

from service.audiences.views import router as audiences_router
from service.customers.views import router as customers_router
from service.dead_letters.views import router as dead_letters_router
from service.diagnostics.views import router as diagnostics_router
from service.drift.views import router as drift_router
from service.events.views import router as events_router
from service.fairness.views import router as fairness_router
from service.forecasts.views import router as forecasts_router
from service.jobs.views import router as jobs_router
from service.learning.views import router as learning_router
from service.model_versions.views import router as models_router
from service.ops.views import router as ops_router
from service.portrait.views import router as portrait_router
from service.scoring.views import router as scoring_router
from service.webhooks.views import router as webhooks_router


def include_routers(app: FastAPI) -> None:
    app.include_router(ops_router)
    app.include_router(events_router)
    app.include_router(dead_letters_router)
    app.include_router(customers_router)
    app.include_router(portrait_router)
    app.include_router(scoring_router)
    app.include_router(models_router)
    app.include_router(jobs_router)
    app.include_router(learning_router)
    app.include_router(fairness_router)
    app.include_router(diagnostics_router)
    app.include_router(forecasts_router)
    app.include_router(drift_router)
    app.include_router(webhooks_router)
    app.include_router(audiences_router)
