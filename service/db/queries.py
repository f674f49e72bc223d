"""Small query helpers shared by the repositories."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import BigInteger, ColumnElement, Integer, Select, String, bindparam, func, select
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import BindParameter

from service.db.bulk import is_postgresql


def count_rows(session: Session, rows: Select[Any], up_to: int | None = None) -> int:
    """How many rows ``rows`` selects; with ``up_to``, counting stops there (enough to compare
    with a limit, and cheap on a long queue)."""
    counted = (rows if up_to is None else rows.limit(up_to)).subquery()
    return int(session.scalar(select(func.count()).select_from(counted)) or 0)


def one_of(
    session: Session, column: Any, values: Sequence[str] | Sequence[int]
) -> ColumnElement[bool]:
    """``column`` is one of ``values``: on PostgreSQL ``= ANY(array)``, one parameter however
    many values (a list of placeholders stops at 65,535 and costs a bind per value); on SQLite,
    which has no arrays, ``IN`` (its limit is far higher)."""
    if not is_postgresql(session):
        return column.in_(values)  # type: ignore[no-any-return]
    kind = BigInteger() if values and isinstance(values[0], int) else String()
    array = bindparam(None, list(values), type_=postgresql.ARRAY(kind))
    return column == func.any(array)  # type: ignore[no-any-return]


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` of ``count`` disjoint shards of the customers: a training rank's share
    (``service.ml.collective``). Decided by PostgreSQL's ``hashtext`` of the customer id where
    the rows are, so a rank reads only its own customers' rows; SQLite has no such function, and
    is one process's database anyway (``clv train --nproc`` refuses it)."""

    index: int
    count: int

    def holds(self, customer_id: str) -> tuple[str, list[BindParameter[Any]]]:
        """SQL saying that the column ``customer_id`` (as written in the query) is in this
        shard, and its parameters."""
        return (
            f"(hashtext({customer_id}) & 2147483647) % :shard_count = :shard_index",
            [
                bindparam("shard_count", self.count, type_=Integer()),
                bindparam("shard_index", self.index, type_=Integer()),
            ],
        )
