"""The worker queue: events stored but not yet applied to the portrait.

Revision ID: ff0768c838e6
Revises: cbe471a7446e
Create Date: 2026-11-28 14:15:39.845933
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "ff0768c838e6"
down_revision: str | None = "cbe471a7446e"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "pending_events",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=False,
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_pending_events")),
    )


def downgrade() -> None:
    op.drop_table("pending_events")
