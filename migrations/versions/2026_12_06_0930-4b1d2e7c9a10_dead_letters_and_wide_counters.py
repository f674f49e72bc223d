"""Dead letters (events the worker could not apply, set aside with the error) and 64-bit
counters for the portrait's aggregates (PostgreSQL's 32-bit ``integer`` overflowed on units).

Revision ID: 4b1d2e7c9a10
Revises: d6f8c9cb52b1
Create Date: 2026-12-06 09:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import service.db.types

revision: str = "4b1d2e7c9a10"
down_revision: str | None = "d6f8c9cb52b1"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WIDENED = {
    "customer_days": (
        "orders", "units", "refunds", "views", "carts", "removes", "checkouts", "sessions",
        "events",
    ),
    "customer_products": ("bought", "viewed"),
}  # fmt: skip
"""SQLite's INTEGER is 64-bit already; only PostgreSQL's columns change."""


def upgrade() -> None:
    op.create_table(
        "dead_letters",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=False,
            nullable=False,
        ),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("failed_at", service.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_dead_letters")),
    )
    _retype("bigint")


def downgrade() -> None:
    _retype("integer")
    op.drop_table("dead_letters")


def _retype(kind: str) -> None:
    """One ALTER TABLE per table: each column altered on its own would rewrite the whole table
    again, under an exclusive lock."""
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, columns in WIDENED.items():
        changes = ", ".join(f"ALTER COLUMN {name} TYPE {kind}" for name in columns)
        op.execute(f"ALTER TABLE {table} {changes}")
