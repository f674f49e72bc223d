"""Continuous learning and monitoring: the learning decisions, the scheduler's marks, stored
reports (drift, fairness, matured accuracy) and the risk flags of the current scores.

Revision ID: d6f8c9cb52b1
Revises: 51323f6f06c8
Create Date: 2026-11-29 00:18:14.322192
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import service.db.types

revision: str = "d6f8c9cb52b1"
down_revision: str | None = "51323f6f06c8"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "learning_decisions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("decided_at", service.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("trigger", sa.String(length=16), nullable=False),
        sa.Column("mode", sa.String(length=16), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("promoted", sa.Boolean(), nullable=False),
        sa.Column(
            "reasons",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("champion_version", sa.String(length=64), nullable=True),
        sa.Column("challenger_version", sa.String(length=64), nullable=True),
        sa.Column("holdout_from", service.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("holdout_to", service.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column(
            "champion_metrics",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column(
            "challenger_metrics",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column(
            "baseline_metrics",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("job_id", sa.Integer(), nullable=True),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_learning_decisions")),
    )
    with op.batch_alter_table("learning_decisions", schema=None) as batch_op:
        batch_op.create_index("ix_learning_decisions_decided_at", ["decided_at"], unique=False)

    op.create_table(
        "reports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("subject", sa.String(length=64), nullable=False),
        sa.Column("created_at", service.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column(
            "body",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("chart", sa.LargeBinary(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reports")),
    )
    with op.batch_alter_table("reports", schema=None) as batch_op:
        batch_op.create_index(
            "ix_reports_kind_subject_created", ["kind", "subject", "created_at"], unique=False
        )

    op.create_table(
        "scheduler_marks",
        sa.Column("task", sa.String(length=16), nullable=False),
        sa.Column("fired_at", service.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("event_seq", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("task", name=op.f("pk_scheduler_marks")),
    )
    with op.batch_alter_table("scores", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "risk_flags",
                sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
                nullable=True,
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("scores", schema=None) as batch_op:
        batch_op.drop_column("risk_flags")

    op.drop_table("scheduler_marks")
    with op.batch_alter_table("reports", schema=None) as batch_op:
        batch_op.drop_index("ix_reports_kind_subject_created")

    op.drop_table("reports")
    with op.batch_alter_table("learning_decisions", schema=None) as batch_op:
        batch_op.drop_index("ix_learning_decisions_decided_at")

    op.drop_table("learning_decisions")
