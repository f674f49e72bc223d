"""Small query helpers shared by the repositories."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session


def count_rows(session: Session, rows: Select[Any], up_to: int | None = None) -> int:
    """How many rows ``rows`` selects; with ``up_to``, counting stops there (enough to compare
    with a limit, and cheap on a long queue)."""
    counted = (rows if up_to is None else rows.limit(up_to)).subquery()
    return int(session.scalar(select(func.count()).select_from(counted)) or 0)
