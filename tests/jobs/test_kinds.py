"""Every kind of job has exactly the handler its domain registered, and a kind nobody handles is
refused with its name (a job row written by a newer version, or by hand, fails with that)."""

from __future__ import annotations

import pytest

from service.errors import ServiceError
from service.jobs import registry
from service.jobs.kinds import JobKind


def test_every_kind_has_its_domains_handler() -> None:
    registry.load_handlers()

    handlers = {kind: registry.handler_for(kind) for kind in JobKind}

    assert {kind: handler.__module__ for kind, handler in handlers.items()} == {
        JobKind.train: "service.training.jobs",
        JobKind.rescore: "service.scoring.jobs",
        JobKind.learn: "service.learning.jobs",
        JobKind.accuracy: "service.learning.jobs",
        JobKind.drift: "service.drift.jobs",
        JobKind.fairness: "service.fairness.jobs",
    }
    assert registry.handler_for("rescore") is handlers[JobKind.rescore]  # as stored in a row


def test_a_kind_nobody_handles_is_refused_by_name() -> None:
    registry.load_handlers()

    with pytest.raises(ServiceError, match="unknown job kind 'reindex'"):
        registry.handler_for("reindex")
