"""The FastAPI application: ``create_app()`` and its lifespan.

Heavy things (the engine, the rules derived from the settings) are built once per process in the
lifespan, not at import, so importing the app is cheap and tests can build one per database.
Run with ``clv serve`` or ``uvicorn --factory service.main:create_app``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import torch
from fastapi import FastAPI

from service import __version__, background
from service.api.middleware import (
    BodySizeLimitMiddleware,
    JSONCORSMiddleware,
    RequestContextMiddleware,
    RequestTargetMiddleware,
)
from service.api.router import include_routers
from service.api.swagger_ui import install_docs
from service.auth.cache import KeyCache
from service.auth.rate_limit import rate_limiter
from service.config import Settings, WorkerMode
from service.customers.service import ProfilePolicy
from service.db.migrations import ensure_schema_current
from service.db.session import dispose, make_engines, make_session_factory
from service.db.timeouts import Role
from service.errors import install_exception_handlers
from service.events.backpressure import Backpressure
from service.events.service import IngestRules
from service.events.worker import Worker
from service.ops import metrics
from service.privacy import PiiHasher
from service.scoring.service import Scorer

DESCRIPTION = """
Predicts each customer's lifetime value and keeps it current as events stream in.

Authenticate with an API key from `clv apikey create`: press **Authorize** and paste the key.
Scopes: `ingest` (send events and attributes), `read` (profiles, scores), `admin` (everything,
including erasure). Errors are JSON: `{"code", "message", "request_id", "details"?}`.
"""


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # An engine per role of connection, each with its own pool and time limits, so a hung
        # database answers requests 503 in seconds while the worker and jobs wait longer.
        engines = make_engines(settings)
        torch.set_num_threads(settings.torch_threads)
        try:
            ensure_schema_current(engines[Role.jobs])
            pii = PiiHasher.from_settings(settings)
            app.state.settings = settings
            app.state.engine = engines[Role.api]
            app.state.session_factory = make_session_factory(engines[Role.api])
            app.state.ingest_rules = IngestRules.from_settings(settings, pii)
            app.state.backpressure = Backpressure.from_settings(settings)
            app.state.profile_policy = ProfilePolicy.from_settings(settings, pii)
            app.state.scorer = Scorer(settings)
            app.state.api_keys = KeyCache(settings.api_key_cache_seconds)
            app.state.rate_limiter = rate_limiter(settings)
            worker = Worker(
                make_session_factory(engines[Role.worker]),
                poll_seconds=settings.worker_poll_seconds,
                batch=settings.worker_batch,
                scorer=app.state.scorer,
                profiles=app.state.profile_policy,
                retention_months=settings.event_retention_months,
            )
            job_runner = background.job_runner(
                make_session_factory(engines[Role.jobs]), settings, scorer=app.state.scorer
            )
            if settings.worker == WorkerMode.embedded:
                worker.start()
                job_runner.start()
            try:
                yield
            finally:
                # Both at once, so together they take at most uvicorn's graceful 30 s: a job
                # running (training) stops at its next checkpoint and is marked failed.
                for loop in (worker, job_runner):
                    loop.request_stop()
                for loop in (worker, job_runner):
                    loop.stop(timeout=15.0)
                if app.state.rate_limiter is not None:
                    await app.state.rate_limiter.close()
        finally:
            dispose(engines)
            metrics.process_exiting()

    app = FastAPI(
        title="clv-service",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,  # served offline by install_docs
        redoc_url=None,
    )
    install_docs(app)
    install_exception_handlers(app)
    include_routers(app)
    # Added last = outermost: the request id and metrics also cover the size limit's 413s.
    app.add_middleware(BodySizeLimitMiddleware, max_body_bytes=settings.max_body_bytes)
    app.add_middleware(RequestTargetMiddleware)
    app.add_middleware(RequestContextMiddleware)
    if settings.cors_origins:
        # Outermost, so preflights are answered before authentication and every response,
        # errors included, carries the headers a browser needs to read it.
        app.add_middleware(
            JSONCORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "X-Request-ID"],
            expose_headers=["X-Request-ID", "Retry-After"],
            max_age=600,
        )
    return app
