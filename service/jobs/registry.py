"""Which function runs each kind of job. Each domain registers its own handlers in its
``jobs.py`` (``@handles(JobKind.x)``); the runner looks them up by the job's kind instead of
importing each domain's job code (it still imports the learning scheduler it ticks and the scorer
it shares). ``load_handlers`` imports those modules, by name, once per process."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session, sessionmaker

from service.config import Settings
from service.errors import ServiceError
from service.jobs.kinds import JobKind

if TYPE_CHECKING:  # the scorer is scoring's; only its type is needed here
    from service.scoring.service import Scorer

HANDLER_MODULES = (
    "service.training.jobs",
    "service.scoring.jobs",
    "service.learning.jobs",
    "service.drift.jobs",
    "service.fairness.jobs",
)


@dataclass(frozen=True)
class JobContext:
    """What a handler gets: the job's parameters and who asked, the process's database, settings
    and scorer, and the job's progress reporter and cancel flag."""

    session_factory: sessionmaker[Session]
    settings: Settings
    scorer: Scorer
    params: dict[str, Any]
    actor: str
    job_id: int
    progress: Callable[[str, float], None]
    cancelled: Callable[[], bool]


Handler = Callable[[JobContext], dict[str, Any]]
"""Runs one job; its return value is stored as the job's result (JSON)."""

_HANDLERS: dict[JobKind, Handler] = {}


class JobCancelledError(RuntimeError):
    """Raised by a handler that stopped because its job was cancelled (or the worker is
    stopping); the runner marks the job cancelled, or failed when it was the shutdown."""


def handles(kind: JobKind) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        _HANDLERS[kind] = handler
        return handler

    return register


def load_handlers() -> None:
    for module in HANDLER_MODULES:
        importlib.import_module(module)


def handler_for(kind: str) -> Handler:
    try:
        return _HANDLERS[JobKind(kind)]
    except (ValueError, KeyError):
        raise ServiceError(f"unknown job kind {kind!r}") from None
