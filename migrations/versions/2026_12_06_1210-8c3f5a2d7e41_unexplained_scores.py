"""Scores stored first, attributions after: the queue of stored scores still to be explained.

Revision ID: 8c3f5a2d7e41
Revises: 4b1d2e7c9a10
Create Date: 2026-12-06 12:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import service.db.types

revision: str = "8c3f5a2d7e41"
down_revision: str | None = "4b1d2e7c9a10"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "unexplained_scores",
        sa.Column("customer_id", sa.String(length=128), nullable=False),
        sa.Column("computed_at", service.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("leased_until", service.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("customer_id", name=op.f("pk_unexplained_scores")),
    )
    op.create_index(
        "ix_unexplained_scores_computed_at",
        "unexplained_scores",
        ["computed_at", "customer_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_unexplained_scores_computed_at", table_name="unexplained_scores")
    op.drop_table("unexplained_scores")
