"""Stored reports: the newest per kind and subject, undefined numbers stored as null, and only
the newest few hundred kept."""

from __future__ import annotations

import math

import pytest
from sqlalchemy import Engine, func, select

from service.db.session import make_session_factory
from service.reports import repository
from service.reports.models import Report


def test_reports_keep_the_newest_per_subject_and_store_nan_as_null(
    db: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(repository, "KEEP", 3)
    factory = make_session_factory(db)
    with factory() as session, session.begin():
        for number in range(5):
            repository.save(session, "drift", {"n": number, "psi": math.nan}, subject="a")
        repository.save(session, "drift", {"n": 99}, subject="b")
        repository.save(session, "fairness", {"n": 7})
    with factory() as session:
        kept = session.scalars(
            select(Report.body).where(Report.kind == "drift", Report.subject == "a")
        ).all()
        assert sorted(body["n"] for body in kept) == [2, 3, 4]
        assert all(body["psi"] is None for body in kept)
        assert session.scalar(select(func.count()).select_from(Report)) == 5
        newest = repository.latest(session, "drift", "a")
        assert newest is not None
        assert newest.body["n"] == 4
        per_subject = repository.latest_per_subject(session, "drift")
        assert [r.body["n"] for r in per_subject] == [99, 4]
