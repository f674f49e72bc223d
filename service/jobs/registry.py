"""Which function runs each kind of job, and with what parameters. Each domain registers its own
handlers in its ``jobs.py`` (``@job_handler(JobKind.x, params=XParams)``) with a pydantic model
of the parameters it takes: ``service.jobs.service.submit`` takes an instance of that model (the
fields its caller set are stored), the runner validates the stored ``params`` with it again when
the job runs, and the handler reads typed fields instead of keys. ``jobs/`` itself imports no
domain: ``load_handlers`` imports the handler modules by name, and what a handler needs from the
process beyond the database and the settings (the scorer the worker shares) reaches it through
``JobContext.resource``."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from concurrent.futures import CancelledError
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError
from sqlalchemy.orm import Session, sessionmaker

from service.config import Settings
from service.errors import ServiceError
from service.jobs.kinds import JobKind
from service.schemas import describe

HANDLER_MODULES = (
    "service.training.jobs",
    "service.scoring.jobs",
    "service.learning.jobs",
    "service.drift.jobs",
    "service.fairness.jobs",
    "service.diagnostics.jobs",
    "service.forecasts.jobs",
)

P = TypeVar("P", bound=BaseModel)
R = TypeVar("R")


class NoParams(BaseModel):
    """The parameters of a job that takes none."""

    model_config = ConfigDict(extra="forbid")


@dataclass(frozen=True)
class JobContext:
    """What every handler gets besides its parameters: who asked, the process's database and
    settings, the job's progress reporter and cancel flag, and the process's shared objects."""

    session_factory: sessionmaker[Session]
    settings: Settings
    actor: str
    job_id: int
    progress: Callable[[str, float], None]
    cancelled: Callable[[], bool]
    resources: Mapping[type, object]

    def resource(self, kind: type[R]) -> R:
        """The process's shared object of this type (given to the runner), e.g. the scorer
        whose loaded models the API and the event worker use too."""
        found = self.resources.get(kind)
        if not isinstance(found, kind):
            raise ServiceError(f"this process runs no {kind.__name__} for its jobs")
        return found


Run = Callable[[JobContext, P], dict[str, Any]]
"""A handler's function: runs the job; its return value is stored as the job's result (JSON)."""


@dataclass(frozen=True)
class Handler(Generic[P]):
    """A registered handler: its parameters' model and the function that runs the job."""

    params: type[P]
    run: Run[P]

    def __call__(self, job: JobContext, params: Mapping[str, Any]) -> dict[str, Any]:
        try:
            typed = self.params.model_validate(params)
        except ValidationError as wrong:
            raise ServiceError(
                f"the job's params are not {self.params.__name__}: {describe(wrong)}"
            ) from None
        return self.run(job, typed)


_HANDLERS: dict[JobKind, Handler[Any]] = {}


class JobCancelledError(CancelledError):
    """Raised by a handler that stopped because its job was cancelled (or the worker is
    stopping). The runner marks a job cancelled (or failed, when it was the shutdown) on any
    ``concurrent.futures.CancelledError``: this one, or a library's own (a training's)."""


def job_handler(kind: JobKind, params: type[P]) -> Callable[[Run[P]], Run[P]]:
    """Register the decorated function as the handler of ``kind``, taking ``params``."""

    def register(run: Run[P]) -> Run[P]:
        _HANDLERS[kind] = Handler(params, run)
        return run

    return register


def load_handlers() -> None:
    for module in HANDLER_MODULES:
        importlib.import_module(module)


def handler_for(kind: str) -> Handler[Any]:
    try:
        return _HANDLERS[JobKind(kind)]
    except (ValueError, KeyError):
        raise ServiceError(f"unknown job kind {kind!r}") from None
