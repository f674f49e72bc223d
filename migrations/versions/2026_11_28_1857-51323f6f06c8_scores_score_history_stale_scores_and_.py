"""Scores: the current one per customer (with attributions), their history, the customers
waiting for a fresh one, and the value-tier deciles.

Revision ID: 51323f6f06c8
Revises: e2871d1c900e
Create Date: 2026-11-28 18:57:21.967235
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import service.db.types

revision: str = "51323f6f06c8"
down_revision: str | None = "e2871d1c900e"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "score_deciles",
        sa.Column("model_version", sa.String(length=64), nullable=False),
        sa.Column("horizon_days", sa.Integer(), nullable=False),
        sa.Column(
            "boundaries", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.Column("customers", sa.Integer(), nullable=False),
        sa.Column("computed_at", service.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("model_version", "horizon_days", name=op.f("pk_score_deciles")),
    )
    op.create_table(
        "score_history",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("customer_id", sa.String(length=128), nullable=False),
        sa.Column("model_version", sa.String(length=64), nullable=False),
        sa.Column("horizon_days", sa.Integer(), nullable=False),
        sa.Column("as_of", service.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("computed_at", service.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("trigger", sa.String(length=16), nullable=False),
        sa.Column("clv", sa.Float(), nullable=False),
        sa.Column("p10", sa.Float(), nullable=False),
        sa.Column("p50", sa.Float(), nullable=False),
        sa.Column("p90", sa.Float(), nullable=False),
        sa.Column("purchase_probability", sa.Float(), nullable=False),
        sa.Column("probability_alive", sa.Float(), nullable=False),
        sa.Column("expected_orders", sa.Float(), nullable=False),
        sa.Column("expected_order_value", sa.Float(), nullable=False),
        sa.Column("btyd_clv", sa.Float(), nullable=False),
        sa.Column("cold_start", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_score_history")),
    )
    with op.batch_alter_table("score_history", schema=None) as batch_op:
        batch_op.create_index(
            "ix_score_history_customer", ["customer_id", "computed_at"], unique=False
        )

    op.create_table(
        "scores",
        sa.Column("customer_id", sa.String(length=128), nullable=False),
        sa.Column("explanation", sa.LargeBinary(), nullable=True),
        sa.Column("model_version", sa.String(length=64), nullable=False),
        sa.Column("horizon_days", sa.Integer(), nullable=False),
        sa.Column("as_of", service.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("computed_at", service.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("trigger", sa.String(length=16), nullable=False),
        sa.Column("clv", sa.Float(), nullable=False),
        sa.Column("p10", sa.Float(), nullable=False),
        sa.Column("p50", sa.Float(), nullable=False),
        sa.Column("p90", sa.Float(), nullable=False),
        sa.Column("purchase_probability", sa.Float(), nullable=False),
        sa.Column("probability_alive", sa.Float(), nullable=False),
        sa.Column("expected_orders", sa.Float(), nullable=False),
        sa.Column("expected_order_value", sa.Float(), nullable=False),
        sa.Column("btyd_clv", sa.Float(), nullable=False),
        sa.Column("cold_start", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("customer_id", name=op.f("pk_scores")),
    )
    op.create_table(
        "stale_scores",
        sa.Column("customer_id", sa.String(length=128), nullable=False),
        sa.Column("since", service.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("trigger", sa.String(length=16), nullable=False),
        sa.Column("leased_until", service.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("customer_id", name=op.f("pk_stale_scores")),
    )
    op.create_index("ix_stale_scores_since", "stale_scores", ["since", "customer_id"])
    op.create_index("ix_scores_model_version", "scores", ["model_version", "horizon_days"])
    op.create_index("ix_scores_as_of", "scores", ["as_of"])


def downgrade() -> None:
    op.drop_index("ix_scores_as_of", table_name="scores")
    op.drop_index("ix_scores_model_version", table_name="scores")
    op.drop_index("ix_stale_scores_since", table_name="stale_scores")
    op.drop_table("stale_scores")
    op.drop_table("scores")
    with op.batch_alter_table("score_history", schema=None) as batch_op:
        batch_op.drop_index("ix_score_history_customer")

    op.drop_table("score_history")
    op.drop_table("score_deciles")
