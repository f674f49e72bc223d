"""The merged profile, one row per customer, kept current by every attribute write, so that an
audience's profile filter is one GIN-indexed containment (its index moves here from
``customer_attributes``). Schema only: the first worker to start merges the profiles of the
customers who have attributes (``service.customers.service.merge_unmerged``), since the merge
follows CLV_SOURCE_PRECEDENCE, a setting the migration does not read.

Revision ID: 5e0c1f7a9b42
Revises: bd155ea6624e
Create Date: 2026-12-08 00:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "5e0c1f7a9b42"
down_revision: str | None = "bd155ea6624e"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NOTHING_ON_SQLITE = sa.text("0")  # GIN indexes: empty partial indexes on SQLite


def _gin(name: str, table: str) -> None:
    op.create_index(
        name,
        table,
        ["attributes"],
        postgresql_using="gin",
        postgresql_ops={"attributes": "jsonb_path_ops"},
        sqlite_where=NOTHING_ON_SQLITE,
    )


def upgrade() -> None:
    op.create_table(
        "customer_profiles",
        sa.Column("customer_id", sa.String(length=128), nullable=False),
        sa.Column(
            "attributes", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.Column("precedence", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("customer_id", name=op.f("pk_customer_profiles")),
    )
    _gin("ix_customer_profiles_audience", "customer_profiles")
    op.drop_index("ix_customer_attributes_audience", table_name="customer_attributes")


def downgrade() -> None:
    _gin("ix_customer_attributes_audience", "customer_attributes")
    op.drop_index("ix_customer_profiles_audience", table_name="customer_profiles")
    op.drop_table("customer_profiles")
