"""Audiences: saved filters over the stored scores, each score's RFM segment, and the indexes
that answer an audience's count, revenue and first members over a million scored customers.

Revision ID: c8d9d78351ff
Revises: 3a9c7e5b2d18
Create Date: 2026-12-07 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import service.db.types

revision: str = "c8d9d78351ff"
down_revision: str | None = "3a9c7e5b2d18"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NOTHING_ON_SQLITE = sa.text("0")  # GIN indexes: empty partial indexes on SQLite
FILTERED = ("clv", "purchase_probability", "as_of", "segment", "cold_start", "customer_id")
COVERING = {key: [name for name in FILTERED if name != key] for key in FILTERED}


def upgrade() -> None:
    op.create_table(
        "audiences",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column(
            "filters", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.Column("notify_above", sa.BigInteger(), nullable=True),
        sa.Column("notify_below", sa.BigInteger(), nullable=True),
        sa.Column("last_count", sa.BigInteger(), nullable=True),
        sa.Column("checked_at", service.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", service.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audiences")),
        sa.UniqueConstraint("name", name=op.f("uq_audiences_name")),
    )
    op.add_column("scores", sa.Column("segment", sa.String(length=16), nullable=True))
    op.add_column("score_history", sa.Column("segment", sa.String(length=16), nullable=True))
    op.create_index(
        "ix_scores_audience_clv",
        "scores",
        ["model_version", "horizon_days", "clv"],
        postgresql_include=COVERING["clv"],
    )
    op.create_index(
        "ix_scores_audience_probability",
        "scores",
        ["model_version", "horizon_days", "purchase_probability"],
        postgresql_include=COVERING["purchase_probability"],
    )
    op.create_index(
        "ix_scores_audience_segment",
        "scores",
        ["model_version", "horizon_days", "segment"],
        postgresql_include=COVERING["segment"],
    )
    op.create_index(
        "ix_scores_audience_flags",
        "scores",
        ["risk_flags"],
        postgresql_using="gin",
        postgresql_ops={"risk_flags": "jsonb_path_ops"},
        sqlite_where=NOTHING_ON_SQLITE,
    )
    op.create_index(
        "ix_customer_attributes_audience",
        "customer_attributes",
        ["attributes"],
        postgresql_using="gin",
        postgresql_ops={"attributes": "jsonb_path_ops"},
        sqlite_where=NOTHING_ON_SQLITE,
    )


def downgrade() -> None:
    op.drop_index("ix_customer_attributes_audience", table_name="customer_attributes")
    op.drop_index("ix_scores_audience_flags", table_name="scores")
    op.drop_index("ix_scores_audience_segment", table_name="scores")
    op.drop_index("ix_scores_audience_probability", table_name="scores")
    op.drop_index("ix_scores_audience_clv", table_name="scores")
    with op.batch_alter_table("score_history") as batch:
        batch.drop_column("segment")
    with op.batch_alter_table("scores") as batch:
        batch.drop_column("segment")
    op.drop_table("audiences")
